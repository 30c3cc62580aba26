using System.Formats.Tar;
using System.Globalization;
using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Store;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>
/// What the restore tests share: agents for node-a and node-b over a share and state directories of their own, and
/// a counter pod on node-a checkpointed once by the agent (left running). Restores through CRI go to
/// <see cref="CriTarget"/>, a node whose runtime has them (node-b on containerd 1.7 has not), from checkpoints made on
/// <see cref="CriSource"/>, another node: node-a's counter when the target is not node-a, else a second counter pod.
/// Everything is removed at the end.
/// </summary>
public sealed class RestoreFixture : IAsyncLifetime
{
    // xunit 2 gives fixtures no fixtures: this one owns its handle on the shared cluster (it never takes it down).
    private readonly LocalCluster cluster = new();

    public const string NodeA = "node-a";
    public const string NodeB = "node-b";

    private readonly string _root = Path.Combine("/var/lib/podmigrate", $"test-restore-{Guid.NewGuid():N}"[..24]);

    internal NodeAgent AgentA { get; private set; } = null!;

    internal NodeAgent AgentB { get; private set; } = null!;

    public LocalCluster Cluster => cluster;

    public V1Pod Source { get; private set; } = null!;

    /// <summary>The node CRI restores go to: one with restore through CRI, not node-a when another has it.</summary>
    public string CriTarget { get; private set; } = "";

    /// <summary>Where the pod that <see cref="CheckpointCriSourceAsync"/> checkpoints runs: a node other than <see cref="CriTarget"/>.</summary>
    public string CriSource { get; private set; } = "";

    /// <summary>The counter pod on <see cref="CriSource"/>: <see cref="Source"/> when that is node-a.</summary>
    public V1Pod CriSourcePod { get; private set; } = null!;

    internal NodeAgent CriTargetAgent => AgentOf(CriTarget);

    /// <summary>A checkpoint of <see cref="CriSourcePod"/> every CRI restore test can restore on <see cref="CriTarget"/>.</summary>
    public string CriCheckpointId { get; private set; } = "";

    /// <summary>The counter's value as <see cref="CriCheckpointId"/> holds it.</summary>
    public long CriArchivedCount { get; private set; }

    /// <summary>The checkpoint of <see cref="Source"/> every test restores from.</summary>
    public string CheckpointId { get; private set; } = "";

    /// <summary>The counter's value as the archive holds it (tmp/count in rootfs-diff.tar).</summary>
    public long ArchivedCount { get; private set; }

    public async Task InitializeAsync()
    {
        await cluster.InitializeAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var share = Path.Combine(_root, "share");
        Directory.CreateDirectory(share);
        AgentA = new NodeAgent(cluster.Info.Node(NodeA), share, Path.Combine(_root, NodeA));
        AgentB = new NodeAgent(cluster.Info.Node(NodeB), share, Path.Combine(_root, NodeB));

        Source = TestPods.Counter(cluster.Image("counter"), "restore-src");
        await cluster.Runner(NodeA).RunAsync(Source, cts.Token);
        await RestoreAssertions.WaitForCountAsync(cluster.Runner(NodeA), Source.Metadata.Name!, 15, cts.Token);
        CheckpointId = await CheckpointSourceAsync(cts.Token);
        ArchivedCount = await ArchivedCountOfAsync(CheckpointId, cts.Token);

        CriTarget = cluster.Info.NodeWithCriRestore(preferNot: NodeA).Name;
        CriSource = CriTarget == NodeA ? cluster.Info.OtherNode(NodeA).Name : NodeA;
        if (CriSource == NodeA)
        {
            CriSourcePod = Source;
            CriCheckpointId = CheckpointId;
            CriArchivedCount = ArchivedCount;
            return;
        }
        CriSourcePod = TestPods.Counter(cluster.Image("counter"), "restore-crisrc");
        await cluster.Runner(CriSource).RunAsync(CriSourcePod, cts.Token);
        await RestoreAssertions.WaitForCountAsync(cluster.Runner(CriSource), CriSourcePod.Metadata.Name!, 15, cts.Token);
        CriCheckpointId = await CheckpointCriSourceAsync(cts.Token);
        CriArchivedCount = await ArchivedCountOfAsync(CriCheckpointId, cts.Token);
    }

    internal NodeAgent AgentOf(string node) => node switch
    {
        NodeA => AgentA,
        NodeB => AgentB,
        _ => throw new InvalidOperationException($"the restore tests have agents for {NodeA} and {NodeB}, not {node}"),
    };

    /// <summary>A new checkpoint of <see cref="CriSourcePod"/> on <see cref="CriSource"/>, left running.</summary>
    public Task<string> CheckpointCriSourceAsync(CancellationToken cancellationToken)
        => CheckpointAsync(AgentOf(CriSource), CriSourcePod, cancellationToken);

    /// <summary>A new checkpoint of the source pod, left running (what the flipped-byte test corrupts).</summary>
    public Task<string> CheckpointSourceAsync(CancellationToken cancellationToken) => CheckpointAsync(AgentA, Source, cancellationToken);

    private static async Task<string> CheckpointAsync(NodeAgent agent, V1Pod pod, CancellationToken cancellationToken)
    {
        var request = new CheckpointRequest
        {
            Container = new ContainerSelector { Pod = new ContainerSelector.Types.PodContainer { Namespace = TestPods.Namespace, Pod = pod.Metadata.Name!, Container = "counter" } },
            Disposition = SourceDisposition.SourceLeaveRunning,
        };
        var result = await agent.Checkpoint.RunAsync(request, _ => { }, cancellationToken);
        result.SourceState.ShouldBe(SourceState.SourceRunning);
        return result.Checkpoint.CheckpointId;
    }

    /// <summary>
    /// A new, correctly published checkpoint (every digest matches) whose CRIU image <paramref name="imageFile"/> is
    /// garbage (made from the fixture's checkpoint or <paramref name="from"/>): what gets past verification and fails in CRIU itself.
    /// </summary>
    public Task<string> PublishWithDamagedCriuImageAsync(string imageFile, CancellationToken cancellationToken, string? from = null)
        => PublishModifiedAsync(
            (directory, token) => File.WriteAllBytesAsync(Path.Combine(directory, CheckpointLayout.CheckpointDirectory, imageFile), new byte[64], token),
            cancellationToken,
            from);

    /// <summary>
    /// A new, correctly published checkpoint (every digest matches) made from the fixture's checkpoint (or
    /// <paramref name="from"/>) changed by <paramref name="modify"/> (given the unpacked archive directory): what gets past verification and fails later.
    /// </summary>
    public async Task<string> PublishModifiedAsync(Func<string, CancellationToken, Task> modify, CancellationToken cancellationToken, string? from = null)
    {
        from ??= CheckpointId;
        var directory = Path.Combine(_root, "modified-" + Guid.NewGuid().ToString("N")[..8]);
        await AgentA.Store.ExtractAsync(CheckpointIdOf(from), directory, cancellationToken);
        try
        {
            await modify(directory, cancellationToken);
            var id = Core.Store.CheckpointId.New(TimeProvider.System);
            var source = await AgentA.Store.GetAsync(CheckpointIdOf(from), cancellationToken);
            await AgentA.Store.PublishAsync(new CheckpointPublishRequest
            {
                Id = id,
                SourceDirectory = directory,
                SourceNode = source.Manifest.SourceNode,
                Pod = source.Manifest.Pod,
                Container = source.Manifest.Container,
                ImageReference = source.Manifest.ImageReference,
            }, progress: null, cancellationToken);
            return id.Value;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>The counter's value in a checkpoint of <see cref="Source"/> (tmp/count in its rootfs-diff.tar).</summary>
    public async Task<long> ArchivedCountOfAsync(string checkpointId, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(_root, "inspect-" + checkpointId);
        await AgentA.Store.ExtractAsync(CheckpointIdOf(checkpointId), directory, cancellationToken);
        try
        {
            await using var diff = File.OpenRead(Path.Combine(directory, CheckpointLayout.RootFsDiffTar));
            await using var reader = new TarReader(diff);
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                if (entry.Name.TrimStart('.', '/') == "tmp/count" && entry.DataStream is { } data)
                {
                    using var text = new StreamReader(data);
                    return long.Parse((await text.ReadToEndAsync(cancellationToken)).Trim(), CultureInfo.InvariantCulture);
                }
            }
            throw new InvalidOperationException($"checkpoint {checkpointId}: rootfs-diff.tar has no tmp/count");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    internal static CheckpointId CheckpointIdOf(string value) => Core.Store.CheckpointId.Parse(value);

    public async Task DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            if (Source is not null)
            {
                await cluster.Runner(NodeA).RemoveAsync(TestPods.Namespace, Source.Metadata.Name!, TimeSpan.FromSeconds(2), cts.Token);
            }
            if (CriSourcePod is not null && !ReferenceEquals(CriSourcePod, Source))
            {
                await cluster.Runner(CriSource).RemoveAsync(TestPods.Namespace, CriSourcePod.Metadata.Name!, TimeSpan.FromSeconds(2), cts.Token);
            }
        }
        finally
        {
            if (AgentA is not null && AgentB is not null)
            {
                // The checkpoint images the tests left on the nodes go with the test's checkpoints.
                foreach (var checkpoint in await AgentA.Store.ListAsync(null, cts.Token))
                {
                    await AgentA.Images.RemoveAsync(checkpoint.Id, cts.Token);
                    await AgentB.Images.RemoveAsync(checkpoint.Id, cts.Token);
                }
            }
            if (AgentA is not null)
            {
                await AgentA.DisposeAsync();
            }
            if (AgentB is not null)
            {
                await AgentB.DisposeAsync();
            }
            if (Directory.Exists(_root))
            {
                Directory.Delete(_root, recursive: true);
            }
            await cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class RestoreTestGroup : ICollectionFixture<RestoreFixture>
{
    public const string Name = "Restore";
}
