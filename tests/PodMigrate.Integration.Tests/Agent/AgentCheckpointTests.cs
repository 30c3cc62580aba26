using System.Globalization;
using System.Security.Cryptography;
using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;
using ContainerState = PodMigrate.Agent.V1.ContainerState;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// The agent's checkpoint side on the real stack: a pod run through CRI on node-a, checkpointed by a real agent
/// (gRPC over a unix socket) with CRIU through containerd, into an archive on a share.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Containerd")]
public sealed class AgentCheckpointTests(LocalCluster cluster) : IAsyncLifetime
{
    private const string Node = "node-a";
    private readonly List<V1Pod> _pods = [];
    private ITestAgent? _agent;

    private AgentClient Agent => _agent!.Client;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        _agent = await TestAgent.StartAsync(
            TestAgentLayout.ForNode(Node, cluster.Info.Node(Node).ContainerdSocket) with { MetricsPort = TestAgentLayout.FreePort() }, cts.Token);
    }

    public async Task DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var pod in _pods)
        {
            // Each pod on its own: one failed removal must not leave the others behind.
            try
            {
                await cluster.Runner(Node).RemoveAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, TimeSpan.Zero, cts.Token);
            }
            catch (PodMigrateException)
            {
            }
        }
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
            Directory.Delete(_agent.Layout.Directory, recursive: true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Leave_running_publishes_a_verified_archive_that_checkpointctl_reads_and_the_source_keeps_counting()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        var pod = await RunCounterAsync("ckpt", cts.Token);
        var before = await WaitForCountAsync(pod, above: 3, cts.Token);

        var result = await Agent.CheckpointToEndAsync(new CheckpointRequest { Container = Select(pod), Codec = Codec.Zstd }, null, cts.Token);

        result.SourceState.ShouldBe(SourceState.SourceRunning);
        var info = result.Checkpoint;
        info.PodNamespace.ShouldBe(TestPods.Namespace);
        info.PodName.ShouldBe(pod.Metadata.Name);
        info.ContainerName.ShouldBe("counter");
        info.SourceNode.ShouldBe(Node);
        info.CriuVersion.ShouldStartWith("4.");
        result.Frozen.ToTimeSpan().ShouldBeGreaterThan(TimeSpan.Zero);
        result.Timings.Select(t => t.Phase).ShouldBe([Phase.Precheck, Phase.Freeze, Phase.Dump, Phase.Pack, Phase.Write]);

        // The archive on the share is what the manifest says, byte for byte.
        var archive = new FileInfo(info.Path);
        archive.Length.ShouldBe(info.ArchiveBytes);
        Convert.ToHexStringLower(await SHA256.HashDataAsync(archive.OpenRead(), cts.Token)).ShouldBe(info.ArchiveSha256);
        (archive.UnixFileMode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)).ShouldBe(UnixFileMode.None, "checkpoints hold process memory: mode 0600");
        (await Agent.InspectCheckpointAsync(info.CheckpointId, verify: true, cts.Token)).ArchiveSha256.ShouldBe(info.ArchiveSha256);

        // The ecosystem's tool reads it as a Kubernetes checkpoint archive.
        var tar = Path.Combine(_agent!.Layout.Directory, "ck.tar");
        (await ProcessRunner.RunAsync(new ProcessSpec("zstd", ["-q", "-d", "-f", info.Path, "-o", tar]), cts.Token)).EnsureSuccess();
        var show = (await ProcessRunner.RunAsync(new ProcessSpec("checkpointctl", ["show", tar]), cts.Token)).EnsureSuccess();
        show.StandardOutput.ShouldContain("counter");
        show.StandardOutput.ShouldContain("containerd");

        // What happened shows on /metrics, in the Prometheus text format.
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri($"http://127.0.0.1:{_agent.Layout.MetricsPort}/metrics"), cts.Token);
        metrics.ShouldContain("# TYPE podmigrate_phase_duration_seconds histogram");
        metrics.ShouldContain("podmigrate_phase_duration_seconds_count{operation=\"checkpoint\",phase=\"dump\"} 1");
        metrics.ShouldContain("podmigrate_operations_total{operation=\"checkpoint\",outcome=\"success\"} 1");
        metrics.ShouldContain($"podmigrate_bytes_total{{kind=\"archive\"}} {info.ArchiveBytes}");

        // The copy did not stop the source.
        var after = await WaitForCountAsync(pod, above: before, cts.Token);
        after.ShouldBeGreaterThan(before);
        (await ContainerAsync(pod, cts.Token)).State.ShouldBe(ContainerState.ContainerRunning);
    }

    [Fact(Timeout = 120_000)]
    public async Task Leave_stopped_keeps_the_source_frozen_until_resume_and_discard_ends_it()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        var pod = await RunCounterAsync("hold", cts.Token);
        await WaitForCountAsync(pod, above: 3, cts.Token);

        var held = await Agent.CheckpointToEndAsync(new CheckpointRequest { Container = Select(pod), Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token);
        held.SourceState.ShouldBe(SourceState.SourceStopped);
        var frozen = await ContainerAsync(pod, cts.Token);
        frozen.State.ShouldBe(ContainerState.ContainerPaused);
        frozen.BusyWith.ShouldContain(held.Checkpoint.CheckpointId);

        // Held stopped: no second checkpoint of it until it is released.
        var busy = await Should.ThrowAsync<PodMigrateException>(() => Agent.CheckpointToEndAsync(new CheckpointRequest { Container = Select(pod) }, null, cts.Token));
        busy.Kind.ShouldBe(ErrorKind.FailedPrecondition);

        // A caller that names another checkpoint (an older migration's rollback) does not let go of this hold.
        var other = await Should.ThrowAsync<PodMigrateException>(() => Agent.ResumeAsync(Select(pod), cts.Token, "someone-elses-checkpoint"));
        other.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        other.Message.ShouldContain($"held for checkpoint {held.Checkpoint.CheckpointId}, not someone-elses-checkpoint");
        (await ContainerAsync(pod, cts.Token)).State.ShouldBe(ContainerState.ContainerPaused);

        (await Agent.ResumeAsync(Select(pod), cts.Token, held.Checkpoint.CheckpointId)).SourceState.ShouldBe(SourceState.SourceRunning);
        var resumedAt = await ReadCountAsync(pod, cts.Token);
        (await WaitForCountAsync(pod, above: resumedAt, cts.Token)).ShouldBeGreaterThan(resumedAt);
        (await Should.ThrowAsync<PodMigrateException>(() => Agent.ResumeAsync(Select(pod), cts.Token))).Kind.ShouldBe(ErrorKind.FailedPrecondition);

        await Agent.CheckpointToEndAsync(new CheckpointRequest { Container = Select(pod), Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token);
        (await Should.ThrowAsync<PodMigrateException>(() => Agent.DiscardAsync(Select(pod), cts.Token, held.Checkpoint.CheckpointId))).Kind.ShouldBe(ErrorKind.FailedPrecondition);
        (await ContainerAsync(pod, cts.Token)).State.ShouldBe(ContainerState.ContainerPaused);
        (await Agent.DiscardAsync(Select(pod), cts.Token)).SourceState.ShouldBe(SourceState.SourceGone);
        (await ContainerAsync(pod, cts.Token)).State.ShouldBe(ContainerState.ContainerStopped);
    }

    [Fact(Timeout = 120_000)]
    public async Task Bad_requests_get_the_error_kind_that_names_the_problem()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        async Task<PodMigrateException> Fails(CheckpointRequest request)
            => await Should.ThrowAsync<PodMigrateException>(() => Agent.CheckpointToEndAsync(request, null, cts.Token));

        var missing = await Fails(new CheckpointRequest { Container = new ContainerSelector { Pod = new() { Namespace = TestPods.Namespace, Pod = "no-such-pod" } } });
        missing.Kind.ShouldBe(ErrorKind.NotFound);
        missing.Message.ShouldContain("no-such-pod");

        (await Fails(new CheckpointRequest { Container = new ContainerSelector { ContainerId = "../../etc" } })).Kind.ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(new CheckpointRequest { Container = new ContainerSelector { Pod = new() { Namespace = "../x", Pod = "counter" } } })).Kind.ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(new CheckpointRequest())).Kind.ShouldBe(ErrorKind.InvalidArgument);

        var pod = await RunCounterAsync("bad", cts.Token);
        var badId = await Fails(new CheckpointRequest { Container = Select(pod), CheckpointId = "../escape" });
        badId.Kind.ShouldBe(ErrorKind.InvalidArgument);
        badId.Message.ShouldContain("../escape");
        (await Fails(new CheckpointRequest { Container = Select(pod), Codec = (Codec)42 })).Kind.ShouldBe(ErrorKind.InvalidArgument);
        (await Fails(new CheckpointRequest { Container = Select(pod), Codec = Codec.Zstd, Level = 99 })).Kind.ShouldBe(ErrorKind.InvalidArgument);

        var id = $"ck-dup-{Guid.NewGuid():N}"[..24];
        await Agent.CheckpointToEndAsync(new CheckpointRequest { Container = Select(pod), CheckpointId = id }, null, cts.Token);
        var dup = await Fails(new CheckpointRequest { Container = Select(pod), CheckpointId = id });
        dup.Kind.ShouldBe(ErrorKind.AlreadyExists);
        dup.Message.ShouldContain(id);

        (await Should.ThrowAsync<PodMigrateException>(() => Agent.InspectCheckpointAsync("ck-none", false, cts.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        // Every failure above left the source running.
        (await ContainerAsync(pod, cts.Token)).State.ShouldBe(ContainerState.ContainerRunning);
    }

    private async Task<V1Pod> RunCounterAsync(string prefix, CancellationToken cancellationToken)
    {
        var pod = TestPods.Counter(cluster.Image("counter"), prefix);
        _pods.Add(pod);
        await cluster.Runner(Node).RunAsync(pod, cancellationToken);
        return pod;
    }

    private static ContainerSelector Select(V1Pod pod)
        => new() { Pod = new ContainerSelector.Types.PodContainer { Namespace = pod.Metadata.NamespaceProperty!, Pod = pod.Metadata.Name!, Container = "counter" } };

    private async Task<ContainerInfo> ContainerAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var list = await Agent.ListContainersAsync(new ListContainersRequest { PodNamespace = pod.Metadata.NamespaceProperty!, PodName = pod.Metadata.Name! }, cancellationToken);
        // A restarted container leaves records; the newest is the one that counts.
        list.Containers.ShouldNotBeEmpty();
        return list.Containers.OrderByDescending(c => c.Pid).First();
    }

    private async Task<long> ReadCountAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var exec = await cluster.Runner(Node).ExecAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, null, ["cat", "/tmp/count"], TimeSpan.FromSeconds(10), cancellationToken);
        exec.ExitCode.ShouldBe(0, exec.Stderr);
        return long.Parse(exec.Stdout.Trim(), CultureInfo.InvariantCulture);
    }

    private async Task<long> WaitForCountAsync(V1Pod pod, long above, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var count = await ReadCountAsync(pod, cancellationToken);
                if (count > above)
                {
                    return count;
                }
            }
            catch (Exception e) when (e is ShouldAssertException or FormatException)
            {
                // Not written yet: the counter writes its first value after its first tick.
            }
            await Task.Delay(100, cancellationToken);
        }
    }
}
