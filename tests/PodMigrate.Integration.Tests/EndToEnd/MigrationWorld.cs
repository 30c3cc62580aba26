using System.Globalization;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Triggers;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Tls;
using PodMigrate.Integration.Tests.NodeEmulator;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;
using PodMigrate.TestKit.Logging;
using PodMigrate.TestKit.Share;
using Xunit.Abstractions;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>
/// A whole PodMigrate cluster for one test, everything real but kube-apiserver and the kubelet: an in-process API
/// server with the project's CRD (deploy/), node emulators playing the kubelet over the real CRI of node-a and node-b,
/// one agent process per node (its own state, a share common to both, gRPC over mutual TLS on loopback; the emulators
/// publish them as the DaemonSet's mirror pods), and the controller in this process, finding the agents through those
/// pods and authenticating with a client certificate — as it runs in a cluster.
/// </summary>
/// <summary>What a world adds to the default: nodes with an enforced memory capacity, the controller's OOM guard.</summary>
internal sealed record MigrationWorldOptions
{
    /// <summary>Each node's memory capacity, enforced on one cgroup per node (the emulator's --node-memory); the agents sample it.</summary>
    public long? NodeMemoryBytes { get; init; }

    public PodMigrate.Controller.Triggers.OomGuard.OomGuardSettings? OomGuard { get; init; }
}

internal sealed class MigrationWorld : IAsyncDisposable
{
    public const string NodeA = "node-a";
    public const string NodeB = "node-b";
    public const string AgentNamespace = "podmigrate-system";

    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly LocalCluster _cluster;
    private readonly ILoggerFactory _logs;
    private readonly string _root;
    private readonly Dictionary<string, TestAgentLayout> _layouts = [];
    private readonly Dictionary<string, AgentProcess> _agents = [];
    private readonly List<(CancellationTokenSource Stop, Task Run)> _controllers = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly MigrationWorldOptions _options;
    private readonly SmbShare? _smb;
    private EvictionWebhookServer? _webhook;
    private string _caPem = "";

    private MigrationWorld(LocalCluster cluster, EmulatedNodes nodes, ILoggerFactory logs, string root, MigrationWorldOptions options, SmbShare? smb)
    {
        _cluster = cluster;
        Nodes = nodes;
        _logs = logs;
        _root = root;
        _options = options;
        NodeCgroupRoot = options.NodeMemoryBytes is null ? null : $"/pm-e2e-{Path.GetFileName(root)[7..]}";
        _smb = smb;
    }

    /// <summary>With <see cref="MigrationWorldOptions.NodeMemoryBytes"/>: the parent of the nodes' cgroups (/pm-e2e-…; each node's is below it).</summary>
    public string? NodeCgroupRoot { get; }

    public string? NodeCgroup(string node) => NodeCgroupRoot is null ? null : $"{NodeCgroupRoot}/{node}";

    public EmulatedNodes Nodes { get; }

    public KubernetesApiClient Api => Nodes.Api;

    /// <summary>
    /// The share as its storage holds it: a directory common to both agents, or with an SMB share the directory Samba
    /// serves (the agents then each use their own node's mount of it).
    /// </summary>
    public string Share => _smb?.ServerPath ?? Path.Combine(_root, "share");

    private string ControllerTls => Path.Combine(_root, "tls", "controller");

    /// <summary>With <paramref name="tls"/> the API server serves HTTPS (what the real kubectl needs to send its token).</summary>
    public static async Task<MigrationWorld> StartAsync(LocalCluster cluster, ITestOutputHelper output, CancellationToken cancellationToken, bool crashableController = false,
        MigrationWorldOptions? options = null, SmbShare? smb = null, bool tls = false)
    {
        var nodes = await EmulatedNodes.StartAsync(cluster, output, cancellationToken, tls);
        var root = Path.Combine(Path.GetTempPath(), $"pm-e2e-{Guid.NewGuid():N}"[..24]);
        Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var world = new MigrationWorld(cluster, nodes, TestOutputLoggerProvider.Factory(output), root, options ?? new MigrationWorldOptions(), smb);
        try
        {
            await world.InstallCrdAsync(cancellationToken);
            await world.Api.Kubernetes.CoreV1.CreateNamespaceAsync(new V1Namespace { Metadata = new V1ObjectMeta { Name = AgentNamespace } }, cancellationToken: cancellationToken);
            // The controller runs as its service account under exactly deploy/'s RBAC: a verb missing there fails here.
            await nodes.ApplyAsync(Path.Combine("deploy", "20-rbac.yaml"), cancellationToken);
            world.IssueCertificates();
            foreach (var node in new[] { NodeA, NodeB })
            {
                var cgroup = world.NodeCgroup(node);
                await world.StartAgentAsync(node, cancellationToken, cgroup is null ? null : new Dictionary<string, string> { ["PODMIGRATE_AGENT__NODECGROUP"] = cgroup });
                var port = world._layouts[node].GrpcPort;
                await nodes.StartEmulatorAsync(node, cancellationToken, o =>
                {
                    o.AgentPort = port;
                    o.NodeMemoryBytes = world._options.NodeMemoryBytes;
                    o.NodeCgroup = cgroup;
                });
            }
            world.StartController("controller-1", releaseLeaseOnStop: !crashableController);
            return world;
        }
        catch
        {
            await world.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts a controller replica; with <paramref name="releaseLeaseOnStop"/> false, stopping it is a crash.</summary>
    public void StartController(string identity, bool releaseLeaseOnStop = true)
    {
        var controller = PodMigrateController.Create(Nodes.ClientAs(EmulatedNodes.ControllerUser), new AgentConnectionOptions { Namespace = AgentNamespace, TlsDirectory = ControllerTls }, new ControllerOptions
        {
            Identity = identity,
            LeaseNamespace = AgentNamespace,
            LeaseDuration = TimeSpan.FromSeconds(4),
            LeaseRenewDeadline = TimeSpan.FromSeconds(3),
            LeaseRetryPeriod = TimeSpan.FromMilliseconds(500),
            ReleaseLeaseOnStop = releaseLeaseOnStop,
            PollInterval = PollInterval,
            RestoreTimeout = TimeSpan.FromSeconds(90),
            OomGuard = _options.OomGuard,
        }, _logs);
        var stop = new CancellationTokenSource();
        _controllers.Add((stop, Task.Run(async () =>
        {
            try
            {
                await controller.RunAsync(stop.Token);
            }
            finally
            {
                controller.Dispose();
            }
        }, CancellationToken.None)));
    }

    /// <summary>Stops every running controller replica (a crash when they were started so).</summary>
    public async Task StopControllersAsync()
    {
        foreach (var (stop, run) in _controllers)
        {
            await stop.CancelAsync();
            await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            stop.Dispose();
        }
        _controllers.Clear();
    }

    /// <summary>Starts (or restarts) a node's agent process; <paramref name="environment"/> e.g. injects a fault (CommitPointProbe).</summary>
    public async Task StartAgentAsync(string node, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? environment = null)
    {
        if (!_layouts.TryGetValue(node, out var layout))
        {
            layout = TestAgentLayout.ForNode(node, _cluster.Info.Node(node).ContainerdSocket, _smb?.MountOf(node) ?? Share) with
            {
                GrpcPort = TestAgentLayout.FreePort(),
                TlsDirectory = Path.Combine(_root, "tls", node),
                // The node's runtime restores from the node's prepared directory: the agent must prepare there.
                PreparedDirectory = _cluster.Info.Node(node).PreparedDir,
                RestoreRuntime = _cluster.Info.Node(node).RestoreRuntime,
            };
            _layouts[node] = layout;
        }
        _agents[node] = await AgentProcess.StartAsync(layout with { Environment = environment }, cancellationToken);
    }

    /// <summary>SIGKILL, as when the node's agent pod dies; its mirror pod turns not Ready when the port stops answering.</summary>
    public async Task KillAgentAsync(string node)
    {
        if (_agents.Remove(node, out var agent))
        {
            await agent.KillAsync();
            await agent.DisposeAsync();
        }
    }

    public AgentProcess Agent(string node) => _agents[node];

    /// <summary>A counter pod bound to <paramref name="node"/>, Running and Ready (<paramref name="customize"/> adjusts the manifest first).</summary>
    public async Task<V1Pod> RunCounterAsync(string prefix, string node, CancellationToken cancellationToken, Action<V1Pod>? customize = null)
    {
        var manifest = TestPods.Counter(_cluster.Image("counter"), prefix);
        manifest.Spec.Containers[0].ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/", Port = "http" }, PeriodSeconds = 1 };
        customize?.Invoke(manifest);
        var created = await Nodes.CreatePodAsync(manifest, node, cancellationToken);
        return await WaitForPodReadyAsync(created.Metadata.NamespaceProperty!, created.Metadata.Name!, cancellationToken);
    }

    public async Task<V1Pod> WaitForPodReadyAsync(string ns, string name, CancellationToken cancellationToken)
        => (await WaitForAsync(
            ct => Nodes.TryGetAsync(KubeResources.V1Pods, ns, name, ct),
            p => p?.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true && p.Status.PodIP is { Length: > 0 },
            $"pod {ns}/{name} Running and Ready", cancellationToken))!;

    public Task WaitForPodGoneAsync(string ns, string name, CancellationToken cancellationToken)
        => WaitForAsync(ct => Nodes.TryGetAsync(KubeResources.V1Pods, ns, name, ct), p => p is null, $"pod {ns}/{name} gone", cancellationToken);

    public Task<PodMigration> CreateMigrationAsync(string name, V1Pod source, string? targetNode, string mode, CancellationToken cancellationToken,
        string verifyWindow = "2s", bool retainCheckpoint = false, string? restoreMethod = null)
        => Api.CreateAsync(PodMigration.Resource, source.Metadata.NamespaceProperty, new PodMigration
        {
            Metadata = new k8s.Models.V1ObjectMeta { Name = name, NamespaceProperty = source.Metadata.NamespaceProperty },
            Spec = new PodMigrationSpec
            {
                PodName = source.Metadata.Name!,
                TargetNode = targetNode,
                Mode = mode,
                VerifyWindow = verifyWindow,
                RetainCheckpoint = retainCheckpoint,
                RestoreMethod = restoreMethod,
            },
        }, cancellationToken);

    public async Task<PodMigration> WaitForMigrationAsync(string ns, string name, Func<PodMigration, bool> condition, string what, CancellationToken cancellationToken)
        => (await WaitForAsync(ct => Nodes.TryGetAsync(PodMigration.Resource, ns, name, ct), m => m is not null && condition(m), $"podmigration {ns}/{name}: {what}", cancellationToken))!;

    public Task<PodMigration> WaitForTerminalAsync(string ns, string name, CancellationToken cancellationToken)
        => WaitForMigrationAsync(ns, name, m => MigrationPhase.IsTerminal(m.Status?.Phase), "a terminal phase", cancellationToken);

    public Task<PodMigration> WaitForPhaseAsync(string ns, string name, string phase, CancellationToken cancellationToken)
        => WaitForMigrationAsync(ns, name, m => m.Status?.Phase == phase || MigrationPhase.IsTerminal(m.Status?.Phase), $"phase {phase}", cancellationToken);

    /// <summary>The counter's value, over HTTP at the pod's IP.</summary>
    public async Task<long> ReadCounterAsync(V1Pod pod, CancellationToken cancellationToken)
    {
        var ip = pod.Status?.PodIP ?? throw new InvalidOperationException($"pod {pod.Key()} has no IP");
        var text = await _http.GetStringAsync(new Uri($"http://{ip}:{TestPods.HttpPort}/"), cancellationToken);
        return long.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }

    /// <summary>GET <paramref name="path"/> on the pod's HTTP port (memhog: /, /digest, /digest/base).</summary>
    public async Task<string> GetTextAsync(V1Pod pod, string path, CancellationToken cancellationToken)
    {
        var ip = pod.Status?.PodIP ?? throw new InvalidOperationException($"pod {pod.Key()} has no IP");
        return (await _http.GetStringAsync(new Uri($"http://{ip}:{TestPods.HttpPort}{path}"), cancellationToken)).Trim();
    }

    /// <summary>Reads the counter until it has moved past <paramref name="above"/>: the workload is running, not frozen.</summary>
    public async Task<long> WaitForCounterAboveAsync(V1Pod pod, long above, CancellationToken cancellationToken)
        => await WaitForAsync(async ct =>
        {
            try
            {
                return await ReadCounterAsync(pod, ct);
            }
            catch (HttpRequestException)
            {
                return -1;
            }
        }, v => v > above, $"counter of pod {pod.Key()} above {above}", cancellationToken);

    public async Task<IReadOnlyList<V1Pod>> PodsAsync(string ns, CancellationToken cancellationToken)
        => (await Api.ListAsync(KubeResources.V1Pods, ns, null, cancellationToken)).Items;

    public Task<IReadOnlyList<Corev1Event>> EventsForAsync(PodMigration migration, CancellationToken cancellationToken)
        => EventsAsync(migration.Namespace!, PodMigration.KindName, migration.Name!, cancellationToken);

    public Task<IReadOnlyList<Corev1Event>> EventsForPodAsync(string ns, string name, CancellationToken cancellationToken)
        => EventsAsync(ns, "Pod", name, cancellationToken);

    /// <summary>The core/v1 Events about one object, as <c>kubectl describe</c> finds them.</summary>
    private async Task<IReadOnlyList<Corev1Event>> EventsAsync(string ns, string kind, string name, CancellationToken cancellationToken)
        => [.. (await KubeApiErrors.CallAsync(token => Api.Kubernetes.CoreV1.ListNamespacedEventAsync(ns,
            fieldSelector: $"involvedObject.kind={kind},involvedObject.name={name}", cancellationToken: token), $"list events of {kind} {ns}/{name}", cancellationToken)).Items];

    /// <summary>The checkpoints directory of the test's share: one directory per checkpoint, by id.</summary>
    public string CheckpointsDirectory => Path.Combine(Share, "checkpoints");

    /// <summary>The published checkpoints on the test's share (staging names start with a dot).</summary>
    public IReadOnlyList<string> CheckpointsOnShare()
        => Directory.Exists(CheckpointsDirectory)
            ? Directory.GetDirectories(CheckpointsDirectory).Select(Path.GetFileName).OfType<string>().Where(n => !n.StartsWith('.')).ToList()
            : [];

    /// <summary>Polls until <paramref name="condition"/> holds (the emulator tests' helper); on timeout names what was last seen.</summary>
    public static Task<T> WaitForAsync<T>(Func<CancellationToken, Task<T>> read, Func<T, bool> condition, string what, CancellationToken cancellationToken)
        => EmulatedNodes.WaitForAsync(read, condition, what, cancellationToken);

    /// <summary>
    /// Serves the controller's eviction webhook (HTTPS, its own certificate from this world's CA, the controller's identity)
    /// and installs deploy/70-eviction-webhook.yaml's ValidatingWebhookConfiguration pointing at it, with the CA as
    /// caBundle, as scripts/cluster.sh does: from then on the API server calls it on every pods/eviction.
    /// </summary>
    public async Task EnableEvictionWebhookAsync(CancellationToken cancellationToken)
    {
        _webhook = await EvictionWebhookServer.StartAsync(Nodes.ClientAs(EmulatedNodes.ControllerUser), new EvictionWebhookOptions
        {
            Address = System.Net.IPAddress.Loopback,
            Port = 0,
            TlsDirectory = Path.Combine(_root, "tls", "webhook"),
            Identity = "controller-1",
        }, _logs, null, cancellationToken);
        var path = Path.Combine(RepositoryRoot(), "deploy", "70-eviction-webhook.yaml");
        var configuration = KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(path, cancellationToken), path)
            .Select(j => System.Text.Json.Nodes.JsonNode.Parse(j)!.AsObject())
            .Single(o => o["kind"]!.GetValue<string>() == "ValidatingWebhookConfiguration");
        var client = configuration["webhooks"]![0]!["clientConfig"]!.AsObject();
        client.Remove("service");
        client["url"] = $"https://127.0.0.1:{_webhook.Port}{EvictionWebhookOptions.Path}";
        client["caBundle"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(_caPem));
        var webhookConfigurations = KubeResources.Custom("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", namespaced: false);
        await Api.CreateAsync(webhookConfigurations, null, KubeJson.Deserialize(configuration.ToJsonString(), KubeClientJsonContext.Default.CustomResource, path), cancellationToken);
    }

    /// <summary>The real kubectl against this world's API server, as the admin; the process is killed at <paramref name="timeout"/>.</summary>
    public async Task<PodMigrate.Core.Processes.ProcessResult> KubectlAsync(TimeSpan timeout, CancellationToken cancellationToken, params string[] arguments)
    {
        var kubeconfig = Path.Combine(_root, "kubeconfig");
        if (!File.Exists(kubeconfig))
        {
            await File.WriteAllTextAsync(kubeconfig, Nodes.Server.KubeconfigYaml(), cancellationToken);
            File.SetUnixFileMode(kubeconfig, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return await PodMigrate.Core.Processes.ProcessRunner.RunAsync(new PodMigrate.Core.Processes.ProcessSpec("kubectl", ["--kubeconfig", kubeconfig, .. arguments]) { Timeout = timeout }, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_webhook is not null)
        {
            await _webhook.DisposeAsync();
        }
        await StopControllersAsync();
        using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            // Pods go through their kubelet (the emulators) so nothing keeps running on the nodes.
            foreach (var pod in await PodsAsync(TestPods.Namespace, cleanup.Token))
            {
                await Api.DeleteAsync(KubeResources.V1Pods, pod.Metadata.NamespaceProperty, pod.Metadata.Name!, new DeleteOptions { GracePeriodSeconds = 0 }, cleanup.Token);
            }
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
        {
            // The emulators' disposal below removes whatever is left on the nodes.
        }
        foreach (var node in _agents.Keys.ToList())
        {
            await KillAgentAsync(node);
        }
        // The agents' state directories (journal, staging, socket) outlive restarts of an agent, not the world.
        foreach (var layout in _layouts.Values)
        {
            try
            {
                Directory.Delete(layout.Directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        await Nodes.DisposeAsync();
        RemoveNodeCgroups();
        _http.Dispose();
        _logs.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The nodes' cgroups (every controller's copy, deepest first) once their pods are gone.</summary>
    private void RemoveNodeCgroups()
    {
        if (NodeCgroupRoot is null)
        {
            return;
        }
        foreach (var controller in Directory.EnumerateDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
        {
            var top = controller + NodeCgroupRoot;
            if (!Directory.Exists(top))
            {
                continue;
            }
            foreach (var dir in Directory.EnumerateDirectories(top, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(top))
            {
                try
                {
                    Directory.Delete(dir, recursive: false);
                }
                catch (IOException)
                {
                    // Busy (a pod still in it): left for the next cleanup.
                }
            }
        }
    }

    private async Task InstallCrdAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(RepositoryRoot(), "deploy", "10-podmigration-crd.yaml");
        foreach (var json in KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(path, cancellationToken), path))
        {
            var crd = KubeJson.Deserialize(json, KubeClientJsonContext.Default.CustomResource, path);
            await Api.CreateAsync(KubeResources.CustomResourceDefinitions, null, crd, cancellationToken);
        }
    }

    /// <summary>One CA; a server certificate per agent (its node name, localhost, 127.0.0.1) and the controller's client certificate.</summary>
    private void IssueCertificates()
    {
        using var ca = CertificateAuthority.Create("PodMigrate e2e CA", TimeSpan.FromDays(1));
        foreach (var node in new[] { NodeA, NodeB })
        {
            WriteTls(Path.Combine(_root, "tls", node), ca, ca.IssueServer(node, [node, "localhost"], [System.Net.IPAddress.Loopback], TimeSpan.FromDays(1)));
        }
        WriteTls(ControllerTls, ca, ca.IssueClient("podmigrate-controller", TimeSpan.FromDays(1)));
        WriteTls(Path.Combine(_root, "tls", "webhook"), ca, ca.IssueTlsServer("podmigrate-webhook.podmigrate-system.svc", ["localhost"], [System.Net.IPAddress.Loopback], TimeSpan.FromDays(1)));
        _caPem = ca.CertificatePem;
    }

    private static void WriteTls(string directory, CertificateAuthority ca, IssuedCertificate issued)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "ca.crt"), ca.CertificatePem);
        File.WriteAllText(Path.Combine(directory, "tls.crt"), issued.CertificatePem);
        File.WriteAllText(Path.Combine(directory, "tls.key"), issued.KeyPem);
        File.SetUnixFileMode(Path.Combine(directory, "tls.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
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
        throw new DirectoryNotFoundException($"no PodMigrate.sln above {AppContext.BaseDirectory}: the end-to-end tests install the repository's deploy/ CRD");
    }
}
