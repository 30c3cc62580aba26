using System.Diagnostics;
using System.Text.Json;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Processes;

namespace PodMigrate.Core.Tests.Archive;

/// <summary>
/// A real CRIU image directory (a sleeping process dumped with the criu binary; its output is not parsed) packed by
/// our writer is read by checkpointctl, the ecosystem's tool, as the Kubernetes checkpoint archive it is.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
public sealed class CheckpointctlCompatibilityTests
{
    private const string Criu = "/usr/local/sbin/criu";
    private const string Checkpointctl = "/usr/local/bin/checkpointctl";
    private const string ContainerName = "sleeper-ctr";

    [Fact(Timeout = 120_000)]
    public async Task Checkpointctl_shows_and_inspects_an_archive_of_a_real_criu_dump()
    {
        Environment.UserName.ShouldBe("root", "this test runs criu dump, which needs root (run the tests as root)");
        File.Exists(Criu).ShouldBeTrue($"{Criu} is missing: run scripts/setup.sh");
        File.Exists(Checkpointctl).ShouldBeTrue($"{Checkpointctl} is missing: run scripts/setup.sh");

        using var temp = new TempDirectory();
        var stage = temp.Combine("stage");
        var images = Path.Combine(stage, CheckpointLayout.CheckpointDirectory);
        Directory.CreateDirectory(images);
        await DumpSleepingProcessAsync(images, stage);
        WriteMetadata(stage);

        var plain = temp.Combine("checkpoint.tar");
        var (manifest, _) = await ArchiveRoundTripTests.WriteAsync(stage, plain, new CodecSettings("none", 0));
        manifest.Files.ShouldContain(f => f.Path == "checkpoint/inventory.img");
        manifest.Files.ShouldContain(f => f.Path == "stats-dump");

        var show = await RunAsync(Checkpointctl, "show", plain);
        show.ExitCode.ShouldBe(0, show.StandardError);
        show.StandardOutput.ShouldContain(ContainerName);

        var inspect = await RunAsync(Checkpointctl, "inspect", "--all", plain);
        inspect.ExitCode.ShouldBe(0, inspect.StandardError);
        inspect.StandardOutput.ShouldContain("sleep");

        // checkpointctl decompresses too: our zstd archive is as readable.
        var compressed = temp.Combine("checkpoint.tar.zst");
        await ArchiveRoundTripTests.WriteAsync(stage, compressed, CheckpointCodecs.Default);
        var showZstd = await RunAsync(Checkpointctl, "show", compressed);
        showZstd.ExitCode.ShouldBe(0, showZstd.StandardError);
        showZstd.StandardOutput.ShouldContain(ContainerName);

        // And it comes back byte for byte.
        var target = temp.Combine("restored");
        await using (var stream = File.OpenRead(plain))
        {
            await CheckpointArchiveReader.ExtractAsync(stream, manifest, target, CancellationToken.None);
        }

        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(stage));
    }

    private static async Task DumpSleepingProcessAsync(string images, string work)
    {
        var start = new ProcessStartInfo("/usr/bin/setsid") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("/bin/sleep");
        start.ArgumentList.Add("600");
        using var sleeper = Process.Start(start) ?? throw new InvalidOperationException("could not start sleep");
        try
        {
            await ProcessRunner.RunCheckedAsync(
                new ProcessSpec(Criu, ["dump", "-t", sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "-D", images, "-W", work, "--shell-job", "-o", CheckpointLayout.DumpLogFile])
                {
                    Timeout = TimeSpan.FromSeconds(60),
                },
                CancellationToken.None);
        }
        finally
        {
            // criu dump kills the task when it succeeds; on failure it is still ours to stop.
            if (!sleeper.HasExited)
            {
                sleeper.Kill();
            }

            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await sleeper.WaitForExitAsync(grace.Token);
        }

        File.Exists(Path.Combine(images, "inventory.img")).ShouldBeTrue("criu dump wrote no inventory.img");
        File.Exists(Path.Combine(work, CheckpointLayout.StatsDumpFile)).ShouldBeTrue("criu dump wrote no stats-dump");
    }

    private static void WriteMetadata(string stage)
    {
        File.WriteAllBytes(Path.Combine(stage, CheckpointLayout.ConfigDumpFile), ArchiveJson.SerializeConfigDump(new ContainerConfigDump
        {
            Id = "5c1e3b0d9a7f4e2c8b6a4d2f0e1c3b5a7d9f1e3c5b7a9d1f3e5c7b9a1d3f5e7c",
            Name = ContainerName,
            RootfsImage = "localhost:5000/podmigrate/pause:1",
            RootfsImageName = "localhost:5000/podmigrate/pause:1",
            RootfsImageRef = "localhost:5000/podmigrate/pause@sha256:" + new string('a', 64),
            Runtime = "io.containerd.runc.v2",
            CreatedTime = DateTimeOffset.UtcNow.AddMinutes(-1),
            CheckpointedTime = DateTimeOffset.UtcNow,
        }));
        var spec = new Dictionary<string, object>
        {
            ["ociVersion"] = "1.1.0",
            ["process"] = new Dictionary<string, object> { ["args"] = new[] { "/bin/sleep", "600" }, ["cwd"] = "/" },
            ["root"] = new Dictionary<string, object> { ["path"] = "rootfs" },
            ["mounts"] = new[] { new Dictionary<string, object> { ["destination"] = "/proc", ["type"] = "proc", ["source"] = "proc" } },
            ["annotations"] = new Dictionary<string, string>
            {
                ["io.kubernetes.cri.container-name"] = ContainerName,
                ["io.kubernetes.cri.sandbox-namespace"] = "default",
                ["io.kubernetes.cri.sandbox-name"] = "sleeper",
            },
        };
        File.WriteAllText(Path.Combine(stage, CheckpointLayout.SpecDumpFile), JsonSerializer.Serialize(spec));
    }

    private static Task<ProcessResult> RunAsync(string file, params string[] arguments)
        => ProcessRunner.RunAsync(new ProcessSpec(file, arguments) { Timeout = TimeSpan.FromSeconds(60) }, CancellationToken.None);
}
