using System.Formats.Tar;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;
using PodMigrate.Node.Rootfs;

namespace PodMigrate.Integration.Tests.Rootfs;

/// <summary>
/// The rootfs diff of a checkpoint, from a real overlayfs-style upper directory: whiteouts are 0:0 character devices and
/// opaque directories carry trusted.overlay.opaque (both need root to make), and they must come out as OCI layer entries.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
public sealed class OverlayDiffWriterTests : IDisposable
{
    private readonly string _upper = Directory.CreateTempSubdirectory("pm-upper-").FullName;

    public void Dispose() => Directory.Delete(_upper, recursive: true);

    [Fact(Timeout = 60_000)]
    public async Task Changes_deletions_and_opaque_directories_become_an_oci_layer()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(50));
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("making whiteouts (mknod) and trusted xattrs needs root: run the tests as root");
        }
        Directory.CreateDirectory(Path.Combine(_upper, "tmp"));
        await File.WriteAllTextAsync(Path.Combine(_upper, "tmp", "count"), "42\n", cts.Token);
        File.CreateSymbolicLink(Path.Combine(_upper, "tmp", "latest"), "count");
        Directory.CreateDirectory(Path.Combine(_upper, "etc"));
        (await ProcessRunner.RunAsync(new ProcessSpec("mknod", [Path.Combine(_upper, "etc", "motd"), "c", "0", "0"]), cts.Token)).EnsureSuccess();
        var opaque = Path.Combine(_upper, "var", "cache");
        Directory.CreateDirectory(opaque);
        (await ProcessRunner.RunAsync(new ProcessSpec("/usr/bin/python3", ["-c", $"import os; os.setxattr('{opaque}', 'trusted.overlay.opaque', b'y')"]), cts.Token)).EnsureSuccess();

        FileKinds.IsOverlayWhiteout(Path.Combine(_upper, "etc", "motd")).ShouldBeTrue();
        FileKinds.IsOverlayWhiteout(Path.Combine(_upper, "tmp", "count")).ShouldBeFalse();

        using var tar = new MemoryStream();
        var count = await OverlayDiffWriter.WriteAsync(_upper, tar, cts.Token);
        tar.Position = 0;
        var entries = new Dictionary<string, TarEntry>();
        using (var reader = new TarReader(tar))
        {
            while (await reader.GetNextEntryAsync(copyData: true, cts.Token) is { } entry)
            {
                entries[entry.Name.TrimEnd('/')] = entry;
            }
        }

        entries.Count.ShouldBe(count);
        entries.Keys.ShouldBe(["etc", "etc/.wh.motd", "tmp", "tmp/count", "tmp/latest", "var", "var/cache", "var/cache/.wh..wh..opq"], ignoreOrder: true);
        entries["etc/.wh.motd"].EntryType.ShouldBe(TarEntryType.RegularFile);
        entries["tmp/latest"].EntryType.ShouldBe(TarEntryType.SymbolicLink);
        entries["tmp/latest"].LinkName.ShouldBe("count");
        using var content = new StreamReader(entries["tmp/count"].DataStream!);
        (await content.ReadToEndAsync(cts.Token)).ShouldBe("42\n");
        entries.Values.ShouldNotContain(e => e.EntryType == TarEntryType.CharacterDevice, "a whiteout device must never reach the layer");
    }
}
