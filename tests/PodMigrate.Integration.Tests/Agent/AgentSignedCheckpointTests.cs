using System.Text.Json.Nodes;
using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Node.Containerd;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// Two real agents sharing one share: the source node's agent makes a genuine, signed checkpoint of a running counter.
/// Then someone who can write to the share but holds no agent key plants a forged checkpoint (a real archive, a
/// consistent manifest, no signature, or a signature by a CA of their own) and alters the genuine one's manifest. The
/// target node's agent (one that restores through CRI, node-b unless it is on containerd 1.7) refuses each with PermissionDenied by both restore methods: nothing staged, no container, no pod, no checkpoint
/// image. The genuine one, intact, then restores.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Containerd")]
public sealed class AgentSignedCheckpointTests(LocalCluster cluster) : IAsyncLifetime
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
    public async Task A_forged_and_an_altered_checkpoint_are_refused_by_a_real_restore_and_nothing_is_staged_or_run()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(230));
        var pod = TestPods.Counter(cluster.Image("counter"), "signed");
        _pods.Add((From, pod));
        await cluster.Runner(From).RunAsync(pod, cts.Token);
        var selector = new ContainerSelector { Pod = new() { Namespace = pod.Metadata.NamespaceProperty!, Pod = pod.Metadata.Name!, Container = "counter" } };
        var genuine = (await _source!.Client.CheckpointToEndAsync(
            new CheckpointRequest { Container = selector, Disposition = SourceDisposition.SourceLeaveRunning }, null, cts.Token)).Checkpoint.CheckpointId;
        var checkpoints = Path.Combine(_share, "checkpoints");
        var genuineDirectory = Path.Combine(checkpoints, genuine);
        File.Exists(Path.Combine(genuineDirectory, CheckpointLayout.SignatureFile)).ShouldBeTrue("the agent signs what it publishes");

        // Planted by someone without an agent key: the genuine archive under a new id, its manifest made consistent, no signature.
        var forged = "ck-forged-" + Guid.NewGuid().ToString("N")[..8];
        var forgedDirectory = Directory.CreateDirectory(Path.Combine(checkpoints, forged)).FullName;
        foreach (var file in Directory.GetFiles(genuineDirectory).Where(f => !f.EndsWith(CheckpointLayout.SignatureFile, StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(forgedDirectory, Path.GetFileName(file)));
        }
        var forgedManifest = JsonNode.Parse(await File.ReadAllBytesAsync(Path.Combine(forgedDirectory, CheckpointLayout.ManifestFile), cts.Token))!.AsObject();
        forgedManifest["checkpointId"] = forged;
        await File.WriteAllTextAsync(Path.Combine(forgedDirectory, CheckpointLayout.ManifestFile), forgedManifest.ToJsonString(), cts.Token);

        await ExpectRefusedAsync(forged, "not signed", pod, cts.Token);

        // The genuine checkpoint's manifest altered (where it restores from): its signature no longer matches.
        var manifestPath = Path.Combine(genuineDirectory, CheckpointLayout.ManifestFile);
        var original = await File.ReadAllBytesAsync(manifestPath, cts.Token);
        var altered = JsonNode.Parse(original)!.AsObject();
        altered["imageReference"] = "evil.example/backdoor:1";
        await File.WriteAllTextAsync(manifestPath, altered.ToJsonString(), cts.Token);

        await ExpectRefusedAsync(genuine, "altered", pod, cts.Token);

        // Put back as the agent signed it, the same checkpoint restores: the refusals were the signature's doing.
        await File.WriteAllBytesAsync(manifestPath, original, cts.Token);
        var clone = TestPods.Counter(cluster.Image("counter"), "signed-clone");
        _pods.Add((To, clone));
        var restored = await _target!.Client.RestoreToEndAsync(new RestoreRequest
        {
            CheckpointId = genuine,
            Method = RestoreMethod.RestoreCriImage,
            Pod = new PodTarget { Namespace = clone.Metadata.NamespaceProperty!, Name = clone.Metadata.Name!, Uid = clone.Metadata.Uid!, Container = "counter" },
        }, null, cts.Token);
        restored.Pid.ShouldBeGreaterThan(0u);
        (await cluster.Runner(To).GetAsync(clone.Metadata.NamespaceProperty!, clone.Metadata.Name!, cts.Token)).ShouldNotBeNull().Containers.ShouldHaveSingleItem().State.ShouldBe("Running");
    }

    /// <summary>Both methods refuse it with PermissionDenied saying why; the target's agent staged nothing and runs nothing of it.</summary>
    private async Task ExpectRefusedAsync(string checkpoint, string reason, V1Pod pod, CancellationToken cancellationToken)
    {
        var containerId = "refused-" + Guid.NewGuid().ToString("N")[..12];
        var requests = new[]
        {
            new RestoreRequest { CheckpointId = checkpoint, ContainerId = containerId, Method = RestoreMethod.RestoreDirect },
            new RestoreRequest
            {
                CheckpointId = checkpoint,
                Method = RestoreMethod.RestoreCriImage,
                Pod = new PodTarget { Namespace = pod.Metadata.NamespaceProperty!, Name = pod.Metadata.Name!, Uid = Guid.NewGuid().ToString() },
            },
        };
        foreach (var request in requests)
        {
            var error = await Should.ThrowAsync<PodMigrateException>(() => _target!.Client.RestoreToEndAsync(request, null, cancellationToken));
            error.Kind.ShouldBe(ErrorKind.PermissionDenied, error.Message);
            error.Message.ShouldContain($"checkpoint {checkpoint} refused");
            error.Message.ShouldContain(reason);
        }

        var staging = Path.Combine(_target!.Layout.StateDirectory, "staging");
        (Directory.Exists(staging) ? Directory.EnumerateFileSystemEntries(staging) : []).ShouldBeEmpty("nothing is staged for a refused checkpoint");
        (await cluster.Runner(To).GetAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, cancellationToken)).ShouldBeNull("no pod runs on the target");
        using var containerd = ContainerdConnection.Open(cluster.Info.Node(To).ContainerdSocket, "k8s.io");
        (await new ContainerdContainers(containerd).ListAsync(cancellationToken, $"id=={containerId}")).ShouldBeEmpty("no container was created");
        (await new ContainerdImages(containerd).ListAsync(cancellationToken, $"labels.\"{CheckpointImage.CheckpointIdKey}\"==\"{checkpoint}\"")).ShouldBeEmpty("no checkpoint image was imported");
    }
}
