using System.Text.Json;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Authentication;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator;
using PodMigrate.TestKit.Cluster;
using PodMigrate.TestKit.Logging;
using Xunit.Abstractions;
using PodSandbox = Runtime.V1.PodSandbox;
using PodSandboxFilter = Runtime.V1.PodSandboxFilter;

namespace PodMigrate.Integration.Tests.NodeEmulator;

/// <summary>
/// One test's world: a fresh in-process API server, and node emulators running in this process against the shared
/// cluster's real containerd nodes. Every sandbox the emulators make carries this API server's cluster id, so the
/// test's leftovers are found (and removed at the end) without touching anyone else's pods on the same nodes.
/// As in the local cluster, the server authenticates each component as its own identity and authorizes with RBAC:
/// <see cref="Api"/> is the admin (system:masters), each emulator is system:node:&lt;node&gt; under
/// scripts/lib/node-emulator-rbac.yaml, and <see cref="ClientAs"/> gives any other identity (the controller's service
/// account, under deploy/20-rbac.yaml once applied).
/// </summary>
internal sealed class EmulatedNodes : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly LocalCluster _cluster;
    private readonly ILoggerFactory _logs;
    private readonly Dictionary<string, (CancellationTokenSource Stop, Task Run)> _emulators = [];
    private readonly List<KubernetesApiClient> _clients = [];
    private readonly IReadOnlyList<StaticToken> _tokens;

    private EmulatedNodes(LocalCluster cluster, ILoggerFactory logs, KubeApiServer server, KubernetesApiClient api, string clusterId, IReadOnlyList<StaticToken> tokens)
    {
        _cluster = cluster;
        _logs = logs;
        Server = server;
        Api = api;
        ClusterId = clusterId;
        _tokens = tokens;
    }

    /// <summary>The identity the controller runs as (deploy/20-rbac.yaml binds its roles).</summary>
    public static readonly UserInfo ControllerUser = UserInfo.ServiceAccount("podmigrate-system", "podmigrate-controller");

    public KubeApiServer Server { get; }

    public KubernetesApiClient Api { get; }

    /// <summary>The uid of this API server's kube-system namespace: the emulators' sandbox label value.</summary>
    public string ClusterId { get; }

    /// <summary>With <paramref name="tls"/> the server serves HTTPS: kubectl sends a bearer token only over TLS.</summary>
    public static async Task<EmulatedNodes> StartAsync(LocalCluster cluster, ITestOutputHelper output, CancellationToken cancellationToken, bool tls = false)
    {
        var logs = TestOutputLoggerProvider.Factory(output);
        // A node's identity under its cluster name and under the default name the tests use (node-a for s1-a: ClusterInfo.Node).
        var nodeNames = cluster.Info.Nodes.SelectMany(n => new[] { n.Name, "node" + n.Name[n.Name.LastIndexOf('-')..] }).Distinct(StringComparer.Ordinal);
        UserInfo[] users = [UserInfo.Admin(), ControllerUser, .. nodeNames.Select(UserInfo.Node)];
        var tokens = users.Select(u => new StaticToken(Guid.NewGuid().ToString("N"), u)).ToList();
        var server = await KubeApiServer.StartAsync(new ApiServerOptions { Tokens = tokens, AuthorizeWithRbac = true, UseTls = tls }, configureLogging: null, cancellationToken);
        var api = new KubernetesApiClient(server.ClientConfig);
        await api.Kubernetes.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = TestPods.Namespace } }, cancellationToken: cancellationToken);
        await ApplyAsync(api, Path.Combine("scripts", "lib", "node-emulator-rbac.yaml"), cancellationToken);
        var clusterId = (await api.GetAsync(KubeResources.Namespaces, null, EmulatorLabels.ClusterIdNamespace, cancellationToken)).Metadata.Uid!;
        return new EmulatedNodes(cluster, logs, server, api, clusterId, tokens);
    }

    /// <summary>A client of the API server authenticated as <paramref name="user"/> (one of this world's identities).</summary>
    public KubernetesApiClient ClientAs(UserInfo user)
    {
        var token = _tokens.First(t => t.User.Name == user.Name).Token;
        var client = new KubernetesApiClient(Server.ClientConfigFor(token));
        _clients.Add(client);
        return client;
    }

    /// <summary>Creates the RBAC objects of a YAML file of the repository (as the admin), as `kubectl create -f` would.</summary>
    public Task ApplyAsync(string repositoryPath, CancellationToken cancellationToken) => ApplyAsync(Api, repositoryPath, cancellationToken);

    private static async Task ApplyAsync(KubernetesApiClient admin, string repositoryPath, CancellationToken cancellationToken)
    {
        var path = Path.Combine(RepositoryRoot(), repositoryPath);
        foreach (var json in KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(path, cancellationToken), path))
        {
            var obj = KubeJson.Deserialize(json, KubeClientJsonContext.Default.CustomResource, path);
            const string Rbac = "rbac.authorization.k8s.io";
            var kind = obj.Kind switch
            {
                "ServiceAccount" => KubeResources.Custom("", "v1", "serviceaccounts", "ServiceAccount"),
                "Role" => KubeResources.Custom(Rbac, "v1", "roles", "Role"),
                "RoleBinding" => KubeResources.Custom(Rbac, "v1", "rolebindings", "RoleBinding"),
                "ClusterRole" => KubeResources.Custom(Rbac, "v1", "clusterroles", "ClusterRole", namespaced: false),
                "ClusterRoleBinding" => KubeResources.Custom(Rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced: false),
                _ => throw new InvalidOperationException($"{path}: {obj.Kind} is not an RBAC kind"),
            };
            await admin.CreateAsync(kind, kind.Namespaced ? obj.Metadata.Namespace : null, obj, cancellationToken);
        }
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PodMigrate.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no PodMigrate.sln above {AppContext.BaseDirectory}: the emulated nodes apply the repository's RBAC");
    }

    /// <summary>
    /// Starts an emulator for <paramref name="node"/> with test-sized intervals, and returns once its Node is Ready.
    /// </summary>
    public async Task StartEmulatorAsync(string node, CancellationToken cancellationToken, Action<NodeEmulatorOptions>? configure = null)
    {
        var options = new NodeEmulatorOptions
        {
            NodeName = node,
            Address = "127.0.0.1",
            LeaseDuration = TimeSpan.FromSeconds(4),
            NodeStatusUpdateInterval = TimeSpan.FromSeconds(1),
            PodSyncInterval = TimeSpan.FromMilliseconds(500),
            HousekeepingInterval = TimeSpan.FromSeconds(2),
            RestartBackoffInitial = TimeSpan.FromSeconds(1),
            RestartBackoffMax = TimeSpan.FromSeconds(4),
        };
        configure?.Invoke(options);
        var emulator = new PodMigrate.NodeEmulator.NodeEmulator(ClientAs(UserInfo.Node(node)), _cluster.Cri(node), options, _logs);
        var stop = new CancellationTokenSource();
        _emulators.Add(node, (stop, Task.Run(() => emulator.RunAsync(stop.Token), CancellationToken.None)));
        await WaitForAsync(
            async ct => await TryGetAsync(KubeResources.V1Nodes, null, node, ct),
            n => n?.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true,
            $"node {node} Ready", cancellationToken);
    }

    /// <summary>Stops the emulator of <paramref name="node"/> the way the process would stop: no cleanup of any pod.</summary>
    public async Task StopEmulatorAsync(string node)
    {
        if (_emulators.Remove(node, out var emulator))
        {
            await emulator.Stop.CancelAsync();
            await emulator.Run;
            emulator.Stop.Dispose();
        }
    }

    /// <summary>Creates <paramref name="pod"/> bound to <paramref name="node"/>; the API server gives it its uid.</summary>
    public async Task<V1Pod> CreatePodAsync(V1Pod pod, string node, CancellationToken cancellationToken)
    {
        pod.Spec.NodeName = node;
        pod.Metadata.Uid = null;
        return await Api.CreateAsync(KubeResources.V1Pods, pod.Metadata.NamespaceProperty, pod, cancellationToken);
    }

    public Task<V1Pod> WaitForPodAsync(V1Pod pod, Func<V1Pod, bool> condition, string what, CancellationToken cancellationToken)
        => WaitForAsync(
            async ct => await TryGetAsync(KubeResources.V1Pods, pod.Metadata.NamespaceProperty, pod.Metadata.Name!, ct),
            p => p is not null && condition(p),
            $"pod {pod.Key()}: {what}", cancellationToken)!;

    public Task WaitForPodGoneAsync(V1Pod pod, CancellationToken cancellationToken)
        => WaitForAsync(
            async ct => await TryGetAsync(KubeResources.V1Pods, pod.Metadata.NamespaceProperty, pod.Metadata.Name!, ct),
            p => p is null || p.Metadata.Uid != pod.Metadata.Uid,
            $"pod {pod.Key()} deleted", cancellationToken);

    /// <summary>The sandboxes of pod <paramref name="podUid"/> on <paramref name="node"/>, whoever made them.</summary>
    public async Task<IReadOnlyList<PodSandbox>> SandboxesAsync(string node, string podUid, CancellationToken cancellationToken)
    {
        var filter = new PodSandboxFilter();
        filter.LabelSelector[KubeletLabels.PodUid] = podUid;
        return await _cluster.Cri(node).Runtime.ListPodSandboxAsync(filter, cancellationToken);
    }

    /// <summary>The sandboxes on <paramref name="node"/> that this test's emulators made.</summary>
    public async Task<IReadOnlyList<PodSandbox>> EmulatedSandboxesAsync(string node, CancellationToken cancellationToken)
    {
        var filter = new PodSandboxFilter();
        filter.LabelSelector[EmulatorLabels.SandboxCluster] = ClusterId;
        return await _cluster.Cri(node).Runtime.ListPodSandboxAsync(filter, cancellationToken);
    }

    /// <summary>Polls until <paramref name="condition"/> holds; on timeout fails with what was last seen.</summary>
    public static async Task<T> WaitForAsync<T>(Func<CancellationToken, Task<T>> read, Func<T, bool> condition, string what, CancellationToken cancellationToken)
    {
        T last = default!;
        try
        {
            while (true)
            {
                last = await read(cancellationToken);
                if (condition(last))
                {
                    return last;
                }
                await Task.Delay(PollInterval, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"gave up waiting for {what}; last seen: {Describe(last)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _emulators.Keys.ToList())
        {
            await StopEmulatorAsync(node);
        }
        // Whatever the test left on the nodes: only this API server's sandboxes, found by its cluster id.
        using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var node in _cluster.Info.Nodes)
        {
            var runner = _cluster.Runner(node.Name);
            foreach (var sandbox in await EmulatedSandboxesAsync(node.Name, cleanup.Token))
            {
                await RemoveWithRetryAsync(runner, sandbox, cleanup.Token);
            }
        }
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        Api.Dispose();
        await Server.DisposeAsync();
        _logs.Dispose();
    }

    /// <summary>
    /// As a kubelet's pod worker retries: containerd refuses StopPodSandbox with "ttrpc: closed" when the sandbox's shim
    /// is exiting at that moment (a pod the emulator was deleting as it stopped); the next try finds it stopped.
    /// </summary>
    private static async Task RemoveWithRetryAsync(KubeletPodRunner runner, PodSandbox sandbox, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await runner.RemoveSandboxAsync(sandbox.Id, sandbox.Metadata, TimeSpan.Zero, cancellationToken);
                return;
            }
            catch (PodMigrateException) when (attempt < 3)
            {
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
            }
        }
    }

    /// <summary>The object, or null when the API server has none by that name.</summary>
    public async Task<T?> TryGetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await Api.GetAsync(kind, ns, name, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    private static string Describe<T>(T value) => value switch
    {
        null => "nothing",
        PodMigrate.Controller.Migrations.PodMigration m => $"podmigration phase {m.Status?.Phase ?? "-"}: {m.Status?.Message}",
        V1Pod pod => JsonSerializer.Serialize(pod, PackageJson.TypeInfo<V1Pod>()),
        V1Node node => JsonSerializer.Serialize(node, PackageJson.TypeInfo<V1Node>()),
        _ => value.ToString() ?? "",
    };
}
