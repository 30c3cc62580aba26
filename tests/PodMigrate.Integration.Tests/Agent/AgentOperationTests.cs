using k8s.Models;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;
using ContainerState = PodMigrate.Agent.V1.ContainerState;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// Agent-owned operations on the real stack (issue 12 item 2): a checkpoint started as an operation outlives the caller
/// that started it, a new caller attaches by its id and reads the result, starting the same id again attaches instead of
/// checkpointing twice, and a cancel before the commit point resumes the source.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Containerd")]
public sealed class AgentOperationTests(LocalCluster cluster) : IAsyncLifetime
{
    private readonly List<V1Pod> _pods = [];
    private readonly List<string> _directories = [];

    private string Node => cluster.Info.Nodes[0].Name;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var pod in _pods)
        {
            try
            {
                await cluster.Runner(Node).RemoveAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, TimeSpan.Zero, cts.Token);
            }
            catch (PodMigrateException)
            {
            }
        }
        foreach (var directory in _directories.Where(Directory.Exists))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact(Timeout = 150_000)]
    public async Task A_caller_that_disconnects_mid_checkpoint_attaches_again_and_gets_the_result_of_the_one_checkpoint()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(140));
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var dumps = 0;
        var layout = Layout() with
        {
            Customize = o => o.CommitPointHook = async (point, _, token) =>
            {
                if (point == CommitPoint.BeforePublish)
                {
                    Interlocked.Increment(ref dumps);
                    reached.TrySetResult();
                    await release.Task.WaitAsync(token);
                }
            },
        };
        // In the test process on purpose: the commit-point hook is test code inside the agent.
        await using var agent = await InProcessAgent.StartAsync(layout, cts.Token);
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "opattach", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);
        const string operationId = "migration-1-checkpoint";
        var request = new StartOperationRequest
        {
            OperationId = operationId,
            Checkpoint = new CheckpointRequest { Container = Select(pod), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = "op-attach" },
        };

        // The first caller starts it, watches, and goes away mid-checkpoint (its channel closed: a controller restart).
        var first = AgentClient.Connect(layout.Socket);
        (await first.StartOperationAsync(request, cts.Token)).State.ShouldBe(OperationState.OperationRunning);
        using (var watch = CancellationTokenSource.CreateLinkedTokenSource(cts.Token))
        {
            await using var updates = first.WatchOperationAsync(operationId, watch.Token).GetAsyncEnumerator(watch.Token);
            (await updates.MoveNextAsync()).ShouldBeTrue();
            updates.Current.Done.ShouldBeFalse();
            await reached.Task.WaitAsync(cts.Token);
            await watch.CancelAsync();
        }
        first.Dispose();

        // A second caller starts the same id: it attaches, nothing starts twice; then it follows it to the end.
        using var second = AgentClient.Connect(layout.Socket);
        var attached = await second.StartOperationAsync(request, cts.Token);
        attached.Done.ShouldBeFalse();
        attached.Progress.ShouldNotBeNull();
        release.SetResult();
        var done = await second.AwaitOperationAsync(operationId, null, cts.Token);

        done.State.ShouldBe(OperationState.OperationSucceeded);
        done.Checkpoint.Checkpoint.CheckpointId.ShouldBe("op-attach");
        done.Checkpoint.SourceState.ShouldBe(SourceState.SourceStopped);
        Volatile.Read(ref dumps).ShouldBe(1, "one checkpoint, whoever asked");
        (await second.GetOperationAsync(operationId, cts.Token)).Checkpoint.Checkpoint.CheckpointId.ShouldBe("op-attach", "the result is kept after the end");
        var hold = await second.GetHoldAsync(Select(pod), cts.Token);
        hold.CheckpointId.ShouldBe("op-attach");
        hold.State.ShouldBe(HoldState.HoldCommitted);
        (await second.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.Select(c => c.CheckpointId).ShouldBe(["op-attach"]);
        (await second.ResumeAsync(Select(pod), cts.Token)).SourceState.ShouldBe(SourceState.SourceRunning);
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    [Fact(Timeout = 150_000)]
    public async Task Cancelling_an_operation_before_the_commit_resumes_the_source_and_publishes_nothing()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(140));
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var layout = Layout() with
        {
            Customize = o => o.CommitPointHook = async (point, _, token) =>
            {
                if (point == CommitPoint.BeforePublish)
                {
                    reached.TrySetResult();
                    await Task.Delay(Timeout.Infinite, token);
                }
            },
        };
        // In the test process on purpose: the commit-point hook is test code inside the agent.
        await using var agent = await InProcessAgent.StartAsync(layout, cts.Token);
        var pod = await RunAsync(TestPods.Memhog(cluster.Image("memhog"), "opcancel", mib: 16), cts.Token);
        await WaitForMemhogAsync(pod, cts.Token);
        await agent.Client.StartOperationAsync(new StartOperationRequest
        {
            OperationId = "cancel-me",
            Checkpoint = new CheckpointRequest { Container = Select(pod), Disposition = SourceDisposition.SourceLeaveStopped, CheckpointId = "op-cancel" },
        }, cts.Token);
        await reached.Task.WaitAsync(cts.Token);

        await agent.Client.CancelOperationAsync("cancel-me", cts.Token);
        var error = await Should.ThrowAsync<PodMigrateException>(() => agent.Client.AwaitOperationAsync("cancel-me", null, cts.Token));
        error.Kind.ShouldBe(ErrorKind.Cancelled);

        (await agent.Client.GetHoldAsync(Select(pod), cts.Token)).State.ShouldBe(HoldState.HoldNone);
        var list = await agent.Client.ListContainersAsync(new ListContainersRequest { PodNamespace = pod.Metadata.NamespaceProperty!, PodName = pod.Metadata.Name! }, cts.Token);
        list.Containers.OrderByDescending(c => c.Pid).First().State.ShouldBe(ContainerState.ContainerRunning);
        (await agent.Client.ListCheckpointsAsync(new ListCheckpointsRequest(), cts.Token)).Checkpoints.ShouldBeEmpty();
        (await MemhogStatusAsync(pod, cts.Token)).ShouldStartWith("ok");
    }

    private TestAgentLayout Layout()
    {
        var layout = TestAgentLayout.ForNode(Node, cluster.Info.Node(Node).ContainerdSocket, share: null);
        _directories.Add(layout.Directory);
        return layout;
    }

    private async Task<V1Pod> RunAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        _pods.Add(pod);
        await cluster.Runner(Node).RunAsync(pod, cancellationToken);
        return pod;
    }

    private static ContainerSelector Select(V1Pod pod)
        => new() { Pod = new ContainerSelector.Types.PodContainer { Namespace = pod.Metadata.NamespaceProperty!, Pod = pod.Metadata.Name!, Container = "memhog" } };

    private async Task<string> MemhogStatusAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var exec = await cluster.Runner(Node).ExecAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, null, ["cat", "/tmp/memhog.status"], TimeSpan.FromSeconds(10), cancellationToken);
        exec.ExitCode.ShouldBe(0, exec.Stderr);
        return exec.Stdout.Trim();
    }

    private async Task WaitForMemhogAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
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
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
        }
    }
}
