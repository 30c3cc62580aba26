using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;
using Xunit;

namespace PodMigrate.TestKit.Cluster;

/// <summary>
/// The shared local cluster (scripts/cluster.sh) that integration tests run pods on. Decision: if the cluster is not
/// up (no $PODMIGRATE_RUN_DIR/cluster.json, or a node's CRI does not answer), the fixture brings it up itself with
/// `scripts/cluster.sh up` (which builds and pushes the workload images with $PODMIGRATE_CLI); it never takes it down,
/// because other test classes and assemblies share it (scripts/test.sh takes it down at the end). Without root, or
/// when `up` fails, every test using it fails with the reason: nothing is skipped.
/// Tests isolate themselves by unique pod names and uids and remove their pods.
/// </summary>
public sealed class LocalCluster : IAsyncLifetime
{
    public const string DefaultRunDir = "/run/podmigrate";
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);

    private readonly Dictionary<string, CriConnection> _connections = [];
    private ClusterInfo? _info;

    public static string RunDir => Environment.GetEnvironmentVariable("PODMIGRATE_RUN_DIR") is { Length: > 0 } dir ? dir : DefaultRunDir;

    public ClusterInfo Info => _info ?? throw new InvalidOperationException("the LocalCluster fixture is not initialized");

    /// <summary>The registry host pods pull from, e.g. localhost:5000.</summary>
    public string Registry => Info.Registry;

    public string Image(string name) => $"{Registry}/podmigrate/{name}:1";

    public async Task InitializeAsync()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("the local cluster needs root (containerd, runc, CNI): run the tests as root (sudo scripts/test.sh)");
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var problem = await ProbeAsync(timeout.Token);
        if (problem is not null)
        {
            var result = await ClusterScript.RunAsync(["up"], new Dictionary<string, string?>(), timeout.Token);
            if (!result.Succeeded)
            {
                throw new InvalidOperationException(
                    $"the local cluster is not up ({problem}) and `scripts/cluster.sh up` failed with exit code {result.ExitCode}:\n{result.StandardError}\n{result.StandardOutput}");
            }
            problem = await ProbeAsync(timeout.Token);
            if (problem is not null)
            {
                throw new InvalidOperationException($"`scripts/cluster.sh up` succeeded but the cluster is not usable: {problem}");
            }
        }
    }

    public CriConnection Cri(string node)
    {
        lock (_connections)
        {
            if (!_connections.TryGetValue(node, out var connection))
            {
                connection = CriConnection.ForUnixSocket(Info.Node(node).ContainerdSocket);
                _connections[node] = connection;
            }
            return connection;
        }
    }

    public KubeletPodRunner Runner(string node) => new(Cri(node), NullLogger<KubeletPodRunner>.Instance);

    public Task DisposeAsync()
    {
        lock (_connections)
        {
            foreach (var connection in _connections.Values)
            {
                connection.Dispose();
            }
            _connections.Clear();
        }
        return Task.CompletedTask;
    }

    /// <summary>Null when every node's CRI answers, else what is wrong.</summary>
    private async Task<string?> ProbeAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(RunDir, "cluster.json");
        if (!File.Exists(path))
        {
            return $"{path} does not exist";
        }
        _info = ClusterInfo.Read(path);
        foreach (var node in _info.Nodes)
        {
            using var cri = CriConnection.ForUnixSocket(node.ContainerdSocket);
            using var probe = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            probe.CancelAfter(ProbeTimeout);
            try
            {
                await cri.Runtime.VersionAsync(probe.Token);
            }
            catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
            {
                return $"node {node.Name} does not answer on {node.ContainerdSocket}: {e.Message}";
            }
        }
        return null;
    }
}
