using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PodMigrate.Core.Archive;

namespace PodMigrate.Core.Tests.Archive;

/// <summary>The confinement laws of <see cref="ArchivePaths"/> over names built from the segments that matter.</summary>
[Trait("Category", "Unit")]
public sealed class ArchivePathProperties
{
    private const string Root = "/target/root";

    // Segments that are harmless, tricky but fine (dots inside names, spaces, non-ASCII) and hostile.
    private static readonly string[] Segments = ["a", "b", "checkpoint", "pages-1.img", "..", ".", "", "...", ".hidden", "a b", "ü", "a\\b", "x\0y"];

    private static Arbitrary<string> Names()
        => Gen.Elements(Segments).ListOf().Select(s => string.Join('/', s))
            .SelectMany(n => Gen.Elements("", "/", "./", "././").Select(prefix => prefix + n))
            .SelectMany(n => Gen.Elements("", "/").Select(suffix => n + suffix))
            .ToArbitrary();

    private static Arbitrary<(string Entry, string Target)> Links()
        => Names().Generator.Zip(Names().Generator).ToArbitrary();

    [Property(MaxTest = 2000)]
    public Property An_accepted_entry_name_resolves_inside_the_target()
        => Prop.ForAll(Names(), name =>
            ArchivePaths.Normalize(name) is not { } normalized
            || Path.GetFullPath(Path.Combine(Root, normalized)).StartsWith(Root + "/", StringComparison.Ordinal));

    [Property(MaxTest = 2000)]
    public Property A_name_with_dotdot_or_a_leading_slash_is_refused()
        => Prop.ForAll(Names(), name =>
            !(name.StartsWith('/') || name.Split('/').Contains("..")) || ArchivePaths.Normalize(name) is null);

    [Property(MaxTest = 2000)]
    public Property Normalizing_is_idempotent()
        => Prop.ForAll(Names(), name => ArchivePaths.Normalize(name) is not { } n || ArchivePaths.Normalize(n) == n);

    [Property(MaxTest = 2000)]
    public Property An_accepted_link_target_resolves_inside_the_target()
        => Prop.ForAll(Links(), link =>
        {
            if (ArchivePaths.Normalize(link.Entry) is not { } entry || !ArchivePaths.IsContainedLinkTarget(entry, link.Target))
            {
                return true;
            }

            var resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.Combine(Root, entry))!, link.Target));
            return resolved == Root || resolved.StartsWith(Root + "/", StringComparison.Ordinal);
        });

    [Property(MaxTest = 2000)]
    public Property An_accepted_link_target_climbs_only_before_it_descends()
        // Then no link in the tree can be a step down that a later ".." undoes through another link (the symlink chain
        // escape, FuzzRegressionTests): the kernel resolves a link before the ".." that follows it.
        => Prop.ForAll(Links(), link =>
            ArchivePaths.Normalize(link.Entry) is not { } entry
            || !ArchivePaths.IsContainedLinkTarget(entry, link.Target)
            || !link.Target.Split('/').SkipWhile(s => s is ".." or "." or "").Contains(".."));
}
