using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// A migration the way `podmigrate migrate` does it, through two real agents sharing one share: checkpoint on one node
/// leaving the source stopped, restore through CRI on another node whose runtime can (node-b unless its containerd
/// is 1.7, which cannot: then node-b is the source), then end the source.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Containerd")]
public sealed class AgentMigrationTests(LocalCluster cluster, ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>A node that restores through CRI, node-b when it can (containerd 1.7 cannot).</summary>
    private string To => cluster.Info.NodeWithCriRestore(preferNot: "node-a").Name;

    private string From => cluster.Info.OtherNode(To).Name;
    private readonly List<(string Node, V1Pod Pod)> _pods = [];
    private string _share = "";
    private ITestAgent? _source;
    private ITestAgent? _target;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        _share = Path.Combine(Path.GetTempPath(), $"pm-share-{Guid.NewGuid():N}"[..24]);
        _source = await TestAgent.StartAsync(TestAgentLayout.ForNode(From, cluster.Info.Node(From).ContainerdSocket, _share), cts.Token);
        _target = await TestAgent.StartAsync(TestAgentLayout.ForNode(To, cluster.Info.Node(To).ContainerdSocket, _share), cts.Token);
    }

    public async Task DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var (node, pod) in _pods)
        {
            // Each pod on its own: one failed removal must not leave the others behind.
            try
            {
                await cluster.Runner(node).RemoveAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, TimeSpan.Zero, cts.Token);
            }
            catch (PodMigrateException)
            {
            }
        }
        foreach (var agent in new[] { _source, _target })
        {
            if (agent is not null)
            {
                await agent.DisposeAsync();
                Directory.Delete(agent.Layout.Directory, recursive: true);
            }
        }
        if (Directory.Exists(_share))
        {
            Directory.Delete(_share, recursive: true);
        }
    }

    [Fact(Timeout = 240_000)]
    public async Task Memhog_with_256_MiB_comes_back_on_the_other_node_byte_identical_and_the_source_is_ended()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(230));
        var pod = TestPods.Memhog(cluster.Image("memhog"), "mig256", mib: 256, seed: 7);
        _pods.Add((From, pod));
        var running = await cluster.Runner(From).RunAsync(pod, cts.Token);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var sourceIp = running.Ip.ShouldNotBeNull();
        await WaitForVerifiedAsync(http, sourceIp, cts.Token);
        var digestBefore = await http.GetStringAsync(new Uri($"http://{sourceIp}:{TestPods.HttpPort}/digest"), cts.Token);

        var selector = new ContainerSelector { Pod = new() { Namespace = pod.Metadata.NamespaceProperty!, Pod = pod.Metadata.Name!, Container = "memhog" } };
        var checkpoint = await _source!.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = selector, Disposition = SourceDisposition.SourceLeaveStopped }, null, cts.Token);
        checkpoint.Checkpoint.RawBytes.ShouldBeGreaterThan(256L << 20, "the archive holds the workload's whole memory");

        _pods.Add((To, pod));
        var restored = await _target!.Client.RestoreToEndAsync(new RestoreRequest
        {
            CheckpointId = checkpoint.Checkpoint.CheckpointId,
            Method = RestoreMethod.RestoreCriImage,
            Pod = new PodTarget { Namespace = pod.Metadata.NamespaceProperty!, Name = pod.Metadata.Name!, Uid = Guid.NewGuid().ToString() },
        }, null, cts.Token);
        (await _source.Client.DiscardAsync(selector, cts.Token)).SourceState.ShouldBe(SourceState.SourceGone);
        output.WriteLine($"checkpoint {checkpoint.Checkpoint.RawBytes >> 20} MiB: {Timings(checkpoint.Timings)}, wall {checkpoint.Wall.ToTimeSpan().TotalMilliseconds:0} ms");
        output.WriteLine($"restore through checkpoint image {restored.CheckpointImage}: {Timings(restored.Timings)}, wall {restored.Wall.ToTimeSpan().TotalMilliseconds:0} ms");

        restored.PodIp.ShouldNotBeNullOrEmpty();
        var targetIp = restored.PodIp;
        targetIp.ShouldNotBe(sourceIp);
        var digestAfter = await http.GetStringAsync(new Uri($"http://{targetIp}:{TestPods.HttpPort}/digest"), cts.Token);
        digestAfter.ShouldBe(digestBefore, "the restored memory is byte-identical to the checkpointed one");
        // And it goes on verifying its pattern on the new node.
        var status = await WaitForVerifiedAsync(http, targetIp, cts.Token);
        status.ShouldContain("mib=256");
    }

    private static string Timings(IEnumerable<PhaseTiming> timings)
        => string.Join(", ", timings.Select(t => $"{t.Phase} {t.Duration.ToTimeSpan().TotalMilliseconds:0} ms"));

    /// <summary>Until memhog reports a completed verification pass: "ok passes=N mib=M seed=S" with N &gt; 0.</summary>
    private static async Task<string> WaitForVerifiedAsync(HttpClient http, string ip, CancellationToken cancellationToken)
    {
        while (true)
        {
            try
            {
                var status = (await http.GetStringAsync(new Uri($"http://{ip}:{TestPods.HttpPort}/"), cancellationToken)).Trim();
                status.ShouldNotStartWith("CORRUPT");
                if (status.StartsWith("ok", StringComparison.Ordinal) && !status.Contains("passes=0", StringComparison.Ordinal))
                {
                    return status;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(200, cancellationToken);
        }
    }
}
