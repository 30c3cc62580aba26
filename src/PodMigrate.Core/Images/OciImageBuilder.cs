using System.Formats.Tar;
using System.IO.Compression;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>What an image is made of: its layers (each a set of entries) and the process config a runtime starts it with.</summary>
public sealed record OciImageSpec
{
    public required ImageReference Name { get; init; }

    /// <summary>The layers, lowest first; each one is written as a deterministic tar+gzip blob.</summary>
    public required IReadOnlyList<IReadOnlyList<LayerEntry>> Layers { get; init; }

    public IReadOnlyList<string>? Entrypoint { get; init; }

    public IReadOnlyList<string>? Cmd { get; init; }

    public IReadOnlyList<string>? Env { get; init; }

    public string? WorkingDir { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    /// <summary>Annotations on the manifest itself (where runtimes look for e.g. <c>org.criu.checkpoint.container.name</c>).</summary>
    public IReadOnlyDictionary<string, string>? ManifestAnnotations { get; init; }
}

/// <summary>One layer as built: its blob descriptor and the digest of its uncompressed tar (the config's diff_id).</summary>
public sealed record BuiltLayer(OciDescriptor Descriptor, OciDigest DiffId);

/// <summary>An image written to an OCI layout.</summary>
public sealed record BuiltImage(ImageReference Name, string LayoutDirectory, OciDescriptor Manifest, OciDescriptor Config, IReadOnlyList<BuiltLayer> Layers)
{
    public OciDigest ManifestDigest => Manifest.ParsedDigest;
}

/// <summary>
/// Builds OCI images into an <see cref="OciLayout"/>. The output depends only on the inputs: entries are sorted,
/// every entry has mtime 0 and uid/gid 0 with no user/group names, parents missing from the list are added as
/// 0755 directories, and the JSON documents serialise in a fixed order, so building twice gives the same digests.
/// Layers are streamed (host file → tar → gzip → blob file), never held in memory.
/// </summary>
public static class OciImageBuilder
{
    public static async Task<BuiltImage> BuildAsync(OciImageSpec spec, OciLayout layout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(layout);
        if (spec.Layers.Count == 0)
        {
            throw PodMigrateException.InvalidArgument($"image {spec.Name} needs at least one layer");
        }

        var layers = new List<BuiltLayer>(spec.Layers.Count);
        foreach (var entries in spec.Layers)
        {
            layers.Add(await WriteLayerAsync(layout, entries, cancellationToken));
        }

        var config = new OciImageConfig(
            Architecture: "amd64",
            Os: "linux",
            Config: new OciContainerConfig
            {
                Env = spec.Env,
                Entrypoint = spec.Entrypoint,
                Cmd = spec.Cmd,
                WorkingDir = spec.WorkingDir,
                Labels = Sorted(spec.Labels),
            },
            RootFs: new OciRootFs("layers", layers.Select(l => l.DiffId.ToString()).ToList()));
        var configDescriptor = await layout.WriteJsonBlobAsync(OciMediaTypes.ImageConfig, config, OciJson.Context.OciImageConfig, cancellationToken);

        var manifest = new OciManifest(2, OciMediaTypes.ImageManifest, configDescriptor, layers.Select(l => l.Descriptor).ToList())
        {
            Annotations = Sorted(spec.ManifestAnnotations),
        };
        var manifestDescriptor = await layout.WriteJsonBlobAsync(OciMediaTypes.ImageManifest, manifest, OciJson.Context.OciManifest, cancellationToken);
        await layout.SetImageAsync(spec.Name, manifestDescriptor, cancellationToken);
        return new BuiltImage(spec.Name, layout.Root, manifestDescriptor, configDescriptor, layers);
    }

    /// <summary>Writes one layer blob (tar+gzip) and returns it with its diff_id.</summary>
    public static async Task<BuiltLayer> WriteLayerAsync(OciLayout layout, IReadOnlyList<LayerEntry> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var ordered = Complete(entries);
        OciDigest diffId = default;
        var descriptor = await layout.WriteBlobAsync(
            OciMediaTypes.LayerTarGzip,
            async (blob, token) =>
            {
                await using var gzip = new GZipStream(blob, CompressionLevel.Optimal, leaveOpen: true);
                await using var uncompressed = new OciLayout.HashingStream(gzip, leaveOpen: true);
                await using (var tar = new TarWriter(uncompressed, TarEntryFormat.Gnu, leaveOpen: true))
                {
                    foreach (var entry in ordered)
                    {
                        await WriteEntryAsync(tar, entry, token);
                    }
                }

                diffId = uncompressed.GetDigest();
            },
            cancellationToken);
        return new BuiltLayer(descriptor, diffId);
    }

    /// <summary>Sorts by path (a parent sorts before its children), adds missing parent directories, and rejects duplicates.</summary>
    internal static IReadOnlyList<LayerEntry> Complete(IReadOnlyList<LayerEntry> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var byPath = new SortedDictionary<string, LayerEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!byPath.TryAdd(entry.Path, entry) && byPath[entry.Path] != entry)
            {
                throw PodMigrateException.InvalidArgument($"the layer has two different entries for {entry.Path}");
            }
        }

        foreach (var path in byPath.Keys.ToList())
        {
            for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
            {
                var parent = path[..slash];
                if (byPath.TryGetValue(parent, out var existing))
                {
                    if (existing is not DirectoryEntry)
                    {
                        throw PodMigrateException.InvalidArgument($"{path} is inside {parent}, which is not a directory in this layer");
                    }
                }
                else
                {
                    byPath[parent] = new DirectoryEntry(parent);
                }
            }
        }

        // Sort by path components, not raw strings: "bin/x" must follow "bin" even though '-' < '/' puts "bin-y" between them.
        return byPath.Values.OrderBy(e => e.Path.Replace('/', '\0'), StringComparer.Ordinal).ToList();
    }

    private static async Task WriteEntryAsync(TarWriter tar, LayerEntry entry, CancellationToken cancellationToken)
    {
        switch (entry)
        {
            case FileEntry file:
                {
                    await using var content = OpenSource(file);
                    var tarEntry = NewEntry(TarEntryType.RegularFile, file.Path, file.Mode);
                    tarEntry.DataStream = content;
                    await tar.WriteEntryAsync(tarEntry, cancellationToken);
                    break;
                }

            case DirectoryEntry directory:
                await tar.WriteEntryAsync(NewEntry(TarEntryType.Directory, directory.Path + "/", directory.Mode), cancellationToken);
                break;

            case SymlinkEntry link:
                {
                    var tarEntry = NewEntry(TarEntryType.SymbolicLink, link.Path, (UnixFileMode)0b111_111_111);
                    tarEntry.LinkName = link.Target;
                    await tar.WriteEntryAsync(tarEntry, cancellationToken);
                    break;
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(entry), entry.GetType().Name, "unknown layer entry");
        }
    }

    private static GnuTarEntry NewEntry(TarEntryType type, string name, UnixFileMode mode)
        // GNU, not PAX: .NET names each PAX extended header "PaxHeaders.<process id>/…", which would make the bytes
        // (and the digest) differ from one run to the next. GNU carries long names in ././@LongLink entries instead.
        => new(type, name)
        {
            Mode = mode,
            Uid = 0,
            Gid = 0,
            UserName = string.Empty,
            GroupName = string.Empty,
            ModificationTime = DateTimeOffset.UnixEpoch,
            AccessTime = DateTimeOffset.UnixEpoch,
            ChangeTime = DateTimeOffset.UnixEpoch,
        };

    private static FileStream OpenSource(FileEntry file)
    {
        try
        {
            return new FileStream(file.SourcePath, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"{file.SourcePath} (for {file.Path} in the image) does not exist", e);
        }
    }

    private static SortedDictionary<string, string>? Sorted(IReadOnlyDictionary<string, string>? values)
        => values is null || values.Count == 0 ? null : new SortedDictionary<string, string>(values.ToDictionary(), StringComparer.Ordinal);
}
