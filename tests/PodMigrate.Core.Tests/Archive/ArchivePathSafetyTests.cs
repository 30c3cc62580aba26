using System.Formats.Tar;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tests.Archive;

/// <summary>Hostile archives crafted with TarWriter: every one is refused, naming the entry, and nothing escapes.</summary>
[Trait("Category", "Unit")]
public sealed class ArchivePathSafetyTests
{
    private const int Timeout = 30_000;

    public static TheoryData<string, string> HostileArchives => new()
    {
        { "absolute", "/tmp/pm-escape-absolute" },
        { "dotdot", "../pm-escape-dotdot" },
        { "inner-dotdot", "checkpoint/../../pm-escape-inner" },
        { "symlink-absolute", "evil-abs" },
        { "symlink-escaping", "evil-rel" },
        { "contained-symlink", "inside" },
        { "container-log-symlink", "container.log" },
        { "hardlink", "hard" },
        { "char-device", "null-device" },
        { "fifo", "a-fifo" },
        { "block-device", "disk" },
    };

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(HostileArchives))]
    public async Task Hostile_entries_are_refused_by_name(string kind, string entryName)
    {
        using var temp = new TempDirectory();
        var target = temp.Combine("sandbox", "target");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        var archive = new MemoryStream();
        await using (var writer = new TarWriter(archive, TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "checkpoint/"));
            await writer.WriteEntryAsync(Hostile(kind, entryName));
        }

        archive.Position = 0;
        var error = await Should.ThrowAsync<PodMigrateException>(
            () => CheckpointArchiveReader.ExtractUnverifiedAsync(archive, new CodecSettings("none", 0), "ck-hostile", target, CancellationToken.None));

        error.Kind.ShouldBe(ErrorKind.DataLoss);
        error.Message.ShouldContain(entryName.TrimStart('/').Split('/')[^1]);
        Directory.Exists(target).ShouldBeFalse();
        Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(target)!).ShouldBeEmpty("nothing may land outside the target");
        System.IO.File.Exists("/tmp/pm-escape-absolute").ShouldBeFalse();
    }

    [Theory(Timeout = Timeout)]
    [InlineData("checkpoint/a", "b", true)]
    [InlineData("checkpoint/a", "../config.dump", true)]
    [InlineData("a", "b/../c", false)] // ".." after a name: "b" may itself be a link (FuzzRegressionTests)
    [InlineData("checkpoint/a", "../../x", false)]
    [InlineData("a", "/etc/passwd", false)]
    [InlineData("a", "..", false)]
    [InlineData("a", "", false)]
    public Task Link_targets_are_contained_only_when_they_never_climb_out(string entry, string target, bool contained)
    {
        ArchivePaths.IsContainedLinkTarget(entry, target).ShouldBe(contained);
        return Task.CompletedTask;
    }

    [Theory(Timeout = Timeout)]
    [InlineData("./checkpoint/", "checkpoint")]
    [InlineData("a/b", "a/b")]
    [InlineData("/a", null)]
    [InlineData("a/../b", null)]
    [InlineData("a//b", null)]
    [InlineData("a/./b", null)]
    [InlineData("a\\b", null)]
    [InlineData("", null)]
    public Task Names_are_normalized_or_refused(string name, string? expected)
    {
        ArchivePaths.Normalize(name).ShouldBe(expected);
        return Task.CompletedTask;
    }

    private static PaxTarEntry Hostile(string kind, string name) => kind switch
    {
        "absolute" or "dotdot" or "inner-dotdot" => RegularFile(name),
        // Even a link that stays inside is refused: a checkpoint has no use for links, and a reader that follows one reads the host.
        "contained-symlink" => new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = "checkpoint" },
        // CVE-2026-53489: the runtime read the host file that the archive's container.log linked to.
        "container-log-symlink" => new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = "/etc/shadow" },
        "symlink-absolute" => new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = "/etc" },
        "symlink-escaping" => new PaxTarEntry(TarEntryType.SymbolicLink, name) { LinkName = "checkpoint/../../outside" },
        "hardlink" => new PaxTarEntry(TarEntryType.HardLink, name) { LinkName = "/etc/passwd" },
        "char-device" => new PaxTarEntry(TarEntryType.CharacterDevice, name) { DeviceMajor = 1, DeviceMinor = 3 },
        "block-device" => new PaxTarEntry(TarEntryType.BlockDevice, name) { DeviceMajor = 8, DeviceMinor = 0 },
        "fifo" => new PaxTarEntry(TarEntryType.Fifo, name),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    private static PaxTarEntry RegularFile(string name)
        => new(TarEntryType.RegularFile, name) { DataStream = new MemoryStream("pwned"u8.ToArray()) };
}
