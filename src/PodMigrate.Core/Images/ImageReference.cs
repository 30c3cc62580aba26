using System.Text.RegularExpressions;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>
/// A fully qualified image name, <c>registry/repository[:tag][@digest]</c>, e.g. <c>localhost:5000/podmigrate/counter:1</c>.
/// Parsing qualifies short names the way CRI does (<c>pause</c> becomes <c>docker.io/library/pause:latest</c>), because
/// containerd's CRI only ever sees qualified names.
/// </summary>
public sealed partial record ImageReference
{
    private const string DefaultRegistry = "docker.io";
    private const string DefaultTag = "latest";

    public ImageReference(string registry, string repository, string? tag = null, OciDigest? digest = null)
    {
        if (string.IsNullOrEmpty(registry) || registry.Contains('/', StringComparison.Ordinal))
        {
            throw PodMigrateException.InvalidArgument($"'{registry}' is not a registry host");
        }

        if (!RepositoryPattern().IsMatch(repository))
        {
            throw PodMigrateException.InvalidArgument($"'{repository}' is not a valid repository name (lowercase path components)");
        }

        if (tag is not null && !TagPattern().IsMatch(tag))
        {
            throw PodMigrateException.InvalidArgument($"'{tag}' is not a valid tag");
        }

        Registry = registry;
        Repository = repository;
        Tag = tag ?? (digest is null ? DefaultTag : null);
        Digest = digest;
    }

    /// <summary>The registry host and optional port, e.g. <c>localhost:5000</c>.</summary>
    public string Registry { get; }

    /// <summary>The repository path inside the registry, e.g. <c>podmigrate/counter</c>.</summary>
    public string Repository { get; }

    public string? Tag { get; }

    public OciDigest? Digest { get; }

    /// <summary>What goes after <c>/manifests/</c> in a registry URL: the digest when pinned, else the tag.</summary>
    public string ManifestReference => Digest?.ToString() ?? Tag!;

    /// <summary>Parses <c>[registry/]repository[:tag][@sha256:…]</c>; throws InvalidArgument when malformed.</summary>
    public static ImageReference Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var rest = value;
        OciDigest? digest = null;
        var at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = OciDigest.Parse(rest[(at + 1)..]);
            rest = rest[..at];
        }

        string? tag = null;
        var colon = rest.LastIndexOf(':');
        if (colon > rest.LastIndexOf('/'))
        {
            tag = rest[(colon + 1)..];
            rest = rest[..colon];
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? string.Empty : rest[..slash];
        var hasRegistry = first.Contains('.', StringComparison.Ordinal) || first.Contains(':', StringComparison.Ordinal) || first == "localhost";
        var registry = hasRegistry ? first : DefaultRegistry;
        var repository = hasRegistry ? rest[(slash + 1)..] : rest;
        if (registry == DefaultRegistry && !repository.Contains('/', StringComparison.Ordinal))
        {
            repository = "library/" + repository;
        }

        return new ImageReference(registry, repository, tag, digest);
    }

    public ImageReference WithTag(string tag) => new(Registry, Repository, tag);

    public ImageReference WithDigest(OciDigest digest) => new(Registry, Repository, Tag, digest);

    /// <summary>The same repository without a tag, pinned to a digest: <c>localhost:5000/podmigrate/counter@sha256:…</c>.</summary>
    public ImageReference PinnedTo(OciDigest digest) => new(Registry, Repository, tag: null, digest);

    public override string ToString()
        => $"{Registry}/{Repository}{(Tag is null ? string.Empty : ":" + Tag)}{(Digest is null ? string.Empty : "@" + Digest)}";

    [GeneratedRegex("^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex TagPattern();
}
