using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.Runtime.Contract;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.RestoreRuntime;

/// <summary>
/// The runtime under faults and hostile checkpoints (issue 9 item 9): killed mid-restore, and a checkpoint whose
/// spec.dump / config.dump ask for a device, a capability and a host mount.
/// </summary>
public sealed partial class RestoreRuntimeTests
{
    /// <summary>Restorer.ClaimFile: "pid container-id" of the runtime consuming the staging.</summary>
    private const string ClaimFile = "consumed-by";

    private const int CapSysAdmin = 21;

    [Fact(Timeout = 300_000)]
    public async Task The_runtime_killed_mid_restore_leaves_no_container_and_the_retry_restores_from_the_same_staging()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(280));
        using var scratch = new ScratchDirectory();
        var (images, checkpointed) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);
        var clone = Clone("rc-killed", intervalMs: 1_000_000);
        var id = NewCheckpointId();
        // A rootfs diff big enough that applying it takes a while: the runtime is killed while it applies it, after it
        // claimed the staging and before `runc restore` runs.
        var prepared = Prepare(NodeB, id, clone, images, diff: tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "tmp/ballast")
            {
                DataStream = new ZeroStream(256L << 20),
                Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }));
        var claim = Path.Combine(prepared, ClaimFile);

        var run = cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token);
        var runtimePid = await WaitForClaimAsync(claim, run, cts.Token);
        using (var runtime = Process.GetProcessById(runtimePid))
        {
            runtime.Kill(); // SIGKILL: no finally runs in the runtime
        }

        var error = await Should.ThrowAsync<PodMigrateException>(() => run);
        error.Message.ShouldNotBeNullOrEmpty();
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
        var containers = await cluster.Cri(NodeB).Runtime.ListContainersAsync(null, cts.Token);
        containers.ShouldNotContain(c => c.Labels.ContainsKey("io.kubernetes.pod.name") && c.Labels["io.kubernetes.pod.name"] == clone.Name,
            "the killed create leaves no container behind");
        File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeTrue("the staging stays for the retry (the agent owns its removal)");
        File.Exists(PreparedLayout.RestoredRecordOf(PreparedRoot(NodeB), id)).ShouldBeFalse("nothing was restored");

        // The kubelet's retry: the dead runtime's claim is taken over and the same staging restores.
        await using var _ = await RunAsync(NodeB, clone.Pod(id), cts.Token);
        var restored = await WaitForCountAboveAsync(NodeB, clone.Pod(id), checkpointed - 1, cts.Token);
        restored.ShouldBeGreaterThanOrEqualTo(checkpointed, "the retry restores the checkpoint, it does not start the clone fresh");
        (await WaitForCountAboveAsync(NodeB, clone.Pod(id), restored, cts.Token)).ShouldBeGreaterThan(restored);
        Directory.Exists(prepared).ShouldBeFalse("the staging is consumed once restored");
    }

    [Fact(Timeout = 240_000)]
    public async Task A_spec_dump_asking_for_a_device_a_capability_and_a_host_mount_gives_the_clone_none_of_them()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        using var scratch = new ScratchDirectory();
        var (images, checkpointed) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);
        var clone = Clone("rc-specdump", intervalMs: 1_000_000);
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images);
        // What the advisories' archives carried: CDI device annotations, a device, CAP_SYS_ADMIN and the host's root.
        // Written where a reader of the archive's dumps would look (the staging and the image directory).
        const string hostile = """
            {"ociVersion":"1.0.2",
             "process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}},
             "mounts":[{"destination":"/host","type":"bind","source":"/","options":["rbind","rw"]}],
             "linux":{"devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":438}]},
             "annotations":{"cdi.k8s.io/podmigrate-test":"vendor.example/device=fuse"}}
            """;
        foreach (var dir in new[] { prepared, Path.Combine(prepared, PreparedLayout.ImagesDirectory) })
        {
            File.WriteAllText(Path.Combine(dir, "spec.dump"), hostile);
            File.WriteAllText(Path.Combine(dir, "config.dump"), """{"rootfsImageRef":"localhost:5000/evil@sha256:00","annotations":{"cdi.k8s.io/x":"vendor.example/device=fuse"}}""");
        }

        await using var _ = await RunAsync(NodeB, clone.Pod(id), cts.Token);

        var restored = await WaitForCountAboveAsync(NodeB, clone.Pod(id), checkpointed - 1, cts.Token);
        restored.ShouldBeGreaterThanOrEqualTo(checkpointed);
        var status = await ExecOkAsync(clone, ["cat", "/proc/1/status"], cts.Token);
        var capEff = ulong.Parse(status.Split('\n').Single(l => l.StartsWith("CapEff:", StringComparison.Ordinal))["CapEff:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        (capEff & (1UL << CapSysAdmin)).ShouldBe(0UL, $"the restored process must not have CAP_SYS_ADMIN (CapEff {capEff:x})");
        var mounts = await ExecOkAsync(clone, ["cat", "/proc/1/mountinfo"], cts.Token);
        mounts.Split('\n').Select(l => l.Split(' ')).Where(f => f.Length > 4).Select(f => f[4]).ShouldNotContain("/host", "no host mount from spec.dump");
        var devices = await ExecOkAsync(clone, ["ls", "/dev"], cts.Token);
        devices.Split((char[])['\n', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries).ShouldNotContain("fuse", "no device from spec.dump");
        var images2 = await cluster.Cri(NodeB).Images.ListImagesAsync(cts.Token);
        images2.SelectMany(i => i.RepoTags).ShouldNotContain(t => t.Contains("evil", StringComparison.Ordinal), "no image from config.dump");
    }

    private async Task<string> ExecOkAsync(CloneSpec clone, string[] command, CancellationToken cancellationToken)
    {
        var result = await cluster.Runner(NodeB).ExecAsync(TestPods.Namespace, clone.Name, "counter", command, TimeSpan.FromSeconds(10), cancellationToken);
        result.ExitCode.ShouldBe(0, $"{string.Join(' ', command)}: {result.Stderr}");
        return result.Stdout;
    }

    /// <summary>Waits for the runtime's claim on the staging and returns the runtime's pid (fails if the run ends first).</summary>
    private static async Task<int> WaitForClaimAsync(string claim, Task run, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (run.IsCompleted)
            {
                await run; // a failure says why
                throw new ShouldAssertException($"the restore finished before {claim} was seen: the fault was not injected");
            }
            if (File.Exists(claim))
            {
                var text = await File.ReadAllTextAsync(claim, cancellationToken);
                if (int.TryParse(text.Split(' ', 2)[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                {
                    return pid;
                }
            }
            await Task.Delay(TimeSpan.FromMilliseconds(5), cancellationToken);
        }
    }

    /// <summary>A stream of <paramref name="length"/> zero bytes (tar ballast without the memory).</summary>
    private sealed class ZeroStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            Array.Clear(buffer, offset, n);
            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
