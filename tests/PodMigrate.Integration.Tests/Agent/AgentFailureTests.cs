using System.Globalization;
using k8s.Models;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Node.Containerd;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;
using ContainerState = PodMigrate.Agent.V1.ContainerState;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// What happens to the workload when things go wrong during a checkpoint: a full share, an agent killed mid-way,
/// a client that goes away. The source must end up running, and nothing partial may be visible on the share.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Containerd")]
public sealed class AgentFailureTests(LocalCluster cluster) : IAsyncLifetime
{
    private const string Node = "node-a";
    private readonly List<V1Pod> _pods = [];
    private readonly List<string> _directories = [];
    private readonly List<string> _mounts = [];

    public Task InitializeAsync() => Task.CompletedTask;

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
        foreach (var mount in _mounts)
        {
            await ProcessRunner.RunAsync(new ProcessSpec("umount", [mount]), cts.Token);
        }
        foreach (var directory in _directories.Where(Directory.Exists))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task Full_share_is_ResourceExhausted_the_source_runs_on_and_nothing_is_published()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        var share = NewDirectory("share");
        (await ProcessRunner.RunAsync(new ProcessSpec("mount", ["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", share]), cts.Token)).EnsureSuccess();
        _mounts.Add(share);
        await using var agent = await TestAgent.StartAsync(Layout(share), cts.Token);
        // 32 MiB of a pseudo-random pattern: no codec shrinks it below the 4 MiB the share has.
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "full", mib: 32), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);

        var error = await Should.ThrowAsync<PodMigrateException>(() => agent.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token));

        error.Kind.ShouldBe(ErrorKind.ResourceExhausted);
        error.Message.ShouldContain(share);
        (await StateAsync(agent.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning);
        (await agent.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        NonHiddenEntries(Path.Combine(share, "checkpoints")).ShouldBeEmpty();
        Directory.EnumerateFileSystemEntries(Path.Combine(agent.Layout.StateDirectory, "staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = 180_000)]
    public async Task Agent_killed_during_a_checkpoint_the_next_agent_resumes_the_source_and_lists_nothing_half_written()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(170));
        var layout = Layout(share: null);
        // Large enough that the dump and the write take a while: the kill lands inside the operation.
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "kill", mib: 384), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);

        await using (var first = await AgentProcess.StartAsync(layout, cts.Token))
        {
            await using var stream = first.Client.CheckpointAsync(
                new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveRunning }, cts.Token).GetAsyncEnumerator(cts.Token);
            // Once the dump has begun the source is frozen, and only the journal knows it.
            while (await stream.MoveNextAsync() && stream.Current.Progress?.Phase != Phase.Dump)
            {
            }
            stream.Current.Progress?.Phase.ShouldBe(Phase.Dump);
            await first.KillAsync();
        }
        (await ContainerdStateAsync(pod, cts.Token)).ShouldBe("PAUSED", "a killed agent leaves its source frozen: the next one must release it");

        await using var second = await AgentProcess.StartAsync(layout, cts.Token);

        (await StateAsync(second.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning);
        var status = await MemhogStatusAsync(pod, cts.Token);
        status.ShouldStartWith("ok", customMessage: "the resumed workload's memory is intact");
        (await second.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        NonHiddenEntries(Path.Combine(layout.ShareRoot, "checkpoints")).ShouldBeEmpty();
        Directory.EnumerateFileSystemEntries(Path.Combine(layout.StateDirectory, "staging")).ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task Client_that_cancels_mid_checkpoint_leaves_the_source_running()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        await using var agent = await TestAgent.StartAsync(Layout(share: null), cts.Token);
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "cancel", mib: 256), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);

        using var call = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var stream = agent.Client.CheckpointAsync(new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped }, call.Token);
        await Should.ThrowAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in stream)
            {
                if (e.Progress?.Phase == Phase.Dump)
                {
                    await call.CancelAsync();
                }
            }
        });

        // The agent notices the cancellation, finishes what CRIU is doing, and resumes the source.
        await WaitUntilAsync(async () => await StateAsync(agent.Client, pod, cts.Token) == ContainerState.ContainerRunning, cts.Token);
        (await agent.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    // ---------------------------------------------------------------------------------------------------------------
    // The commit point: the publication of the manifest. Before it a fault resumes the source and publishes nothing;
    // after it the source stays held (frozen, journaled) whatever happens, until Resume. Faults are injected at the
    // instants around it through CommitPointProbe: an agent process that SIGKILLs itself there, or a hook in an
    // in-process agent at which the test cuts the caller's stream.

    [Fact(Timeout = 180_000)]
    public async Task Agent_killed_just_before_the_commit_the_next_agent_resumes_the_source_and_nothing_is_published()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(170));
        var layout = Layout(share: null) with { Environment = FaultExitAt(CommitPoint.BeforePublish) };
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "kbefore", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);

        await using (var first = await AgentProcess.StartAsync(layout, cts.Token))
        {
            await Should.ThrowAsync<PodMigrateException>(() => first.Client.CheckpointToEndAsync(
                new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token));
            await first.ExitedAsync(cts.Token);
        }
        (await ContainerdStateAsync(pod, cts.Token)).ShouldBe("PAUSED", "the agent died with its source frozen");

        await using var second = await AgentProcess.StartAsync(layout with { Environment = null }, cts.Token);

        (await StateAsync(second.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning, "not committed: the next agent resumes the source");
        (await second.Client.GetHoldAsync(Select(pod, "memhog"), cts.Token)).State.ShouldBe(HoldState.HoldNone);
        (await second.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        NonHiddenEntries(Path.Combine(layout.ShareRoot, "checkpoints")).ShouldBeEmpty();
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    [Fact(Timeout = 180_000)]
    public async Task Agent_killed_just_after_the_commit_the_next_agent_keeps_the_source_held_until_Resume()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(170));
        var layout = Layout(share: null) with { Environment = FaultExitAt(CommitPoint.AfterPublish) };
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "kafter", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);
        const string id = "kafter-commit";

        await using (var first = await AgentProcess.StartAsync(layout, cts.Token))
        {
            await Should.ThrowAsync<PodMigrateException>(() => first.Client.CheckpointToEndAsync(
                new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = id }, null, cts.Token));
            await first.ExitedAsync(cts.Token);
        }

        await using var second = await AgentProcess.StartAsync(layout with { Environment = null }, cts.Token);

        await ShouldBeHeldByAsync(second.Client, pod, id, cts.Token);
        (await second.Client.InspectCheckpointAsync(id, verify: true, cts.Token)).CheckpointId.ShouldBe(id);
        // A new checkpoint is refused while the hold stands: the held state is the one the checkpoint has.
        (await Should.ThrowAsync<PodMigrateException>(() => second.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token))).Kind.ShouldBe(ErrorKind.FailedPrecondition);

        (await second.Client.ResumeAsync(Select(pod, "memhog"), cts.Token)).SourceState.ShouldBe(SourceState.SourceRunning);
        (await StateAsync(second.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning);
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    [Fact(Timeout = 180_000)]
    public async Task Agent_killed_after_an_early_seal_the_next_agent_keeps_the_source_held_refuses_to_discard_it_and_Resume_releases_it()
    {
        // Sealed before durable: a target may already run from the checkpoint, so its source must not run on by itself;
        // and the checkpoint is not on the share, so the source is its only durable copy and must not be discarded.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(170));
        var layout = Layout(share: null) with { Environment = FaultExitAt(CommitPoint.AfterSeal) };
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "ksealed", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);
        const string id = "ksealed-early";

        await using (var first = await AgentProcess.StartAsync(layout, cts.Token))
        {
            await Should.ThrowAsync<PodMigrateException>(() => first.Client.CheckpointToEndAsync(
                new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = id, SealEarly = true }, null, cts.Token));
            await first.ExitedAsync(cts.Token);
        }
        (await ContainerdStateAsync(pod, cts.Token)).ShouldBe("PAUSED", "the agent died with its source frozen");

        await using var second = await AgentProcess.StartAsync(layout with { Environment = null }, cts.Token);

        var hold = await second.Client.GetHoldAsync(Select(pod, "memhog"), cts.Token);
        hold.State.ShouldBe(HoldState.HoldSealed, "sealed and not published: held, never resumed at start-up");
        hold.CheckpointId.ShouldBe(id);
        hold.ContainerState.ShouldBe(ContainerState.ContainerPaused);
        (await second.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty("sealed is not published");
        var refused = await Should.ThrowAsync<PodMigrateException>(() => second.Client.DiscardAsync(Select(pod, "memhog"), cts.Token, id));
        refused.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        refused.Message.ShouldContain("not published");
        (await StateAsync(second.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerPaused, "a refused Discard leaves the source as it was");

        (await second.Client.ResumeAsync(Select(pod, "memhog"), cts.Token, id)).SourceState.ShouldBe(SourceState.SourceRunning);
        (await StateAsync(second.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning);
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
        // A seal before durable hands the source's state over: never for a source left running.
        (await Should.ThrowAsync<PodMigrateException>(() => second.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveRunning, SealEarly = true }, null, cts.Token))).Kind.ShouldBe(ErrorKind.InvalidArgument);
    }

    [Fact(Timeout = 120_000)]
    public async Task Stream_cut_just_after_the_commit_leaves_the_source_held_until_Resume()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var layout = Layout(share: null) with
        {
            Customize = o => o.CommitPointHook = async (point, _, token) =>
            {
                if (point == CommitPoint.AfterPublish)
                {
                    reached.TrySetResult();
                    await release.Task.WaitAsync(token);
                }
            },
        };
        // In the test process on purpose: the commit-point hook is test code inside the agent.
        await using var agent = await InProcessAgent.StartAsync(layout, cts.Token);
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "cut", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);
        const string id = "cut-after-commit";

        using var call = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var checkpoint = agent.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = id }, null, call.Token);
        await reached.Task.WaitAsync(cts.Token);
        // The caller goes away (a controller restarts, or loses its leadership) right after the commit.
        await call.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => checkpoint);
        release.SetResult();

        await WaitUntilAsync(async () => (await agent.Client.ListContainersAsync(new ListContainersRequest { PodNamespace = pod.Metadata.NamespaceProperty!, PodName = pod.Metadata.Name! }, cts.Token))
            .Containers.All(c => !c.BusyWith.StartsWith("checkpoint", StringComparison.Ordinal)), cts.Token);
        await ShouldBeHeldByAsync(agent.Client, pod, id, cts.Token);
        (await agent.Client.ResumeAsync(Select(pod, "memhog"), cts.Token)).SourceState.ShouldBe(SourceState.SourceRunning);
        (await StateAsync(agent.Client, pod, cts.Token)).ShouldBe(ContainerState.ContainerRunning);
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    [Fact(Timeout = 120_000)]
    public async Task Stream_cut_just_before_the_commit_resumes_the_source_and_publishes_nothing()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var layout = Layout(share: null) with
        {
            Customize = o => o.CommitPointHook = async (point, _, token) =>
            {
                if (point == CommitPoint.BeforePublish)
                {
                    reached.TrySetResult();
                    // Until the caller's cancellation reaches the operation: the publication then starts cancelled.
                    await Task.Delay(Timeout.Infinite, token);
                }
            },
        };
        // In the test process on purpose: the commit-point hook is test code inside the agent.
        await using var agent = await InProcessAgent.StartAsync(layout, cts.Token);
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "cutb", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);

        using var call = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var checkpoint = agent.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = Select(pod, "memhog"), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = "cut-before-commit" }, null, call.Token);
        await reached.Task.WaitAsync(cts.Token);
        await call.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => checkpoint);

        await WaitUntilAsync(async () => await StateAsync(agent.Client, pod, cts.Token) == ContainerState.ContainerRunning, cts.Token);
        (await agent.Client.GetHoldAsync(Select(pod, "memhog"), cts.Token)).State.ShouldBe(HoldState.HoldNone);
        (await agent.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    private static Dictionary<string, string> FaultExitAt(CommitPoint point) => new() { ["PODMIGRATE_AGENT__FAULTEXITAT"] = point.ToString() };

    /// <summary>Frozen in containerd, journaled by the agent as committed by <paramref name="checkpointId"/>, and staying so.</summary>
    private async Task ShouldBeHeldByAsync(AgentClient agent, V1Pod pod, string checkpointId, CancellationToken cancellationToken)
    {
        var hold = await agent.GetHoldAsync(Select(pod, "memhog"), cancellationToken);
        hold.CheckpointId.ShouldBe(checkpointId);
        hold.State.ShouldBe(HoldState.HoldCommitted);
        hold.ContainerState.ShouldBe(ContainerState.ContainerPaused);
        (await ContainerdStateAsync(pod, cancellationToken)).ShouldBe("PAUSED", "after the commit only Resume lets the source run");
        (await agent.ListCheckpointsAsync(new ListCheckpointsRequest(), cancellationToken)).Checkpoints.Select(c => c.CheckpointId).ShouldBe([checkpointId]);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; the test's own token is the deadline.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        while (!await condition())
        {
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
        }
    }

    private TestAgentLayout Layout(string? share)
    {
        var layout = TestAgentLayout.ForNode(Node, cluster.Info.Node(Node).ContainerdSocket, share);
        _directories.Add(layout.Directory);
        return layout;
    }

    private string NewDirectory(string name)
    {
        var path = Path.Combine(Path.GetTempPath(), $"pm-{name}-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(path);
        _directories.Add(path);
        return path;
    }

    private async Task<V1Pod> RunAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        _pods.Add(pod);
        await cluster.Runner(Node).RunAsync(pod, cancellationToken);
        return pod;
    }

    private static ContainerSelector Select(V1Pod pod, string container)
        => new() { Pod = new ContainerSelector.Types.PodContainer { Namespace = pod.Metadata.NamespaceProperty!, Pod = pod.Metadata.Name!, Container = container } };

    private static async Task<ContainerState> StateAsync(AgentClient agent, V1Pod pod, CancellationToken cancellationToken)
    {
        var list = await agent.ListContainersAsync(new ListContainersRequest { PodNamespace = pod.Metadata.NamespaceProperty!, PodName = pod.Metadata.Name! }, cancellationToken);
        list.Containers.ShouldNotBeEmpty();
        return list.Containers.OrderByDescending(c => c.Pid).First().State;
    }

    /// <summary>The task's state as containerd reports it, asked without any agent.</summary>
    private async Task<string> ContainerdStateAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var containers = await cluster.Cri(Node).Runtime.ListContainersAsync(new global::Runtime.V1.ContainerFilter
        {
            LabelSelector = { ["io.kubernetes.pod.name"] = pod.Metadata.Name!, ["io.kubernetes.pod.namespace"] = pod.Metadata.NamespaceProperty! },
        }, cancellationToken);
        var id = containers.ShouldHaveSingleItem().Id;
        using var containerd = ContainerdConnection.Open(cluster.Info.Node(Node).ContainerdSocket, "k8s.io");
        var task = await new ContainerdTasks(containerd).GetAsync(id, cancellationToken);
        return task.State.ToString().ToUpperInvariant();
    }

    private async Task<string> MemhogStatusAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var exec = await cluster.Runner(Node).ExecAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, null, ["cat", "/tmp/memhog.status"], TimeSpan.FromSeconds(10), cancellationToken);
        exec.ExitCode.ShouldBe(0, exec.Stderr);
        return exec.Stdout.Trim();
    }

    /// <summary>Until memhog has filled its memory and verified it once.</summary>
    private async Task WaitForMemhogAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var status = await MemhogStatusAsync(pod, cancellationToken);
                if (status.StartsWith("ok", StringComparison.Ordinal) && !status.Contains("passes=0", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (ShouldAssertException)
            {
            }
            await Task.Delay(200, cancellationToken);
        }
    }

    private static IEnumerable<string> NonHiddenEntries(string directory)
        => Directory.Exists(directory)
            ? Directory.EnumerateFileSystemEntries(directory).Where(e => !Path.GetFileName(e).StartsWith('.'))
            : [];
}
