using System.Net;
using System.Text;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PodMigrate.Controller.Agents;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tls;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Controller.Tests.Agents;

/// <summary>
/// The agent directory against the in-process API server, with agents published the way the node emulator publishes
/// its mirror pods, and stand-in agents behind them that speak mutual TLS with certificates naming their nodes.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgentDirectoryTests : IAsyncLifetime, IDisposable
{
    private const int TestTimeout = 60_000;
    private const string Namespace = AgentConnectionOptions.DefaultNamespace;

    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(55));
    private readonly TestPki _pki = TestPki.Create();
    private KubeApiServer _server = null!;
    private KubernetesApiClient _api = null!;

    private CancellationToken Token => _timeout.Token;

    public async Task InitializeAsync()
    {
        _server = await KubeApiServer.StartAsync(new ApiServerOptions { InitialNamespaces = ["default", Namespace] }, configureLogging: null, Token);
        _api = new KubernetesApiClient(_server.ClientConfig);
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _server.DisposeAsync();
    }

    public void Dispose()
    {
        _pki.Dispose();
        _timeout.Dispose();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Agents_of_two_nodes_are_found_by_their_pods_and_answer_over_mutual_tls()
    {
        await CreateTlsSecretAsync(Issued());
        await using var agentA = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
        await using var agentB = await FakeAgentServer.StartAsync("node-b", new ServerTlsCredentials(_pki.Server("node-b")));
        await PublishAgentPodAsync("node-a", agentA.Port);
        await PublishAgentPodAsync("node-b", agentB.Port);
        using var directory = Directory();

        var a = await directory.GetAsync("node-a", Token);
        var b = await directory.GetAsync("node-b", Token);
        var infoA = await a.GetNodeInfoAsync(Token);
        var infoB = await b.GetNodeInfoAsync(Token);
        var again = await directory.GetAsync("node-a", Token);
        var listed = await directory.ListAsync(Token);

        infoA.NodeName.ShouldBe("node-a");
        infoB.NodeName.ShouldBe("node-b");
        (await b.HealthAsync(Token)).Status.ShouldBe(Agent.V1.HealthResponse.Types.ServingStatus.Serving);
        again.ShouldBeSameAs(a);
        a.Target.ShouldBe($"https://127.0.0.1:{agentA.Port} (TLS name node-a)");
        listed.Select(e => (e.NodeName, e.Address, e.Pod)).ShouldBe([
            ("node-a", $"https://127.0.0.1:{agentA.Port}", $"{Namespace}/podmigrate-agent-node-a"),
            ("node-b", $"https://127.0.0.1:{agentB.Port}", $"{Namespace}/podmigrate-agent-node-b"),
        ]);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Pods_that_are_not_running_and_ready_are_ignored_and_their_node_is_unavailable()
    {
        await CreateTlsSecretAsync(Issued());
        await PublishAgentPodAsync("node-a", 7440);
        await PublishAgentPodAsync("node-c", 7442, ready: false);
        await PublishAgentPodAsync("node-d", 7443, phase: "Pending", ready: false);
        await CreateAsync(AgentPod("node-e", 7444, labels: new() { ["app.kubernetes.io/name"] = "something-else" }), "Running", ready: true, podIp: "127.0.0.1");
        using var directory = Directory();

        var listed = await directory.ListAsync(Token);
        var notReady = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-c", Token).AsTask());
        var pending = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-d", Token).AsTask());
        var otherLabel = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-e", Token).AsTask());

        listed.Select(e => e.NodeName).ShouldBe(["node-a"]);
        notReady.Kind.ShouldBe(ErrorKind.Unavailable);
        notReady.Message.ShouldBe($"node node-c has no Running and Ready agent: pod {Namespace}/podmigrate-agent-node-c is Running, not Ready");
        pending.Message.ShouldContain("is Pending");
        otherLabel.Kind.ShouldBe(ErrorKind.Unavailable);
        otherLabel.Message.ShouldBe($"node node-e has no Running and Ready agent: no pod matching {AgentConnectionOptions.DefaultLabelSelector} in namespace {Namespace} runs there");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_node_without_an_agent_is_unavailable_by_name()
    {
        await CreateTlsSecretAsync(Issued());
        await PublishAgentPodAsync("node-a", 7440);
        using var directory = Directory();

        var missing = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-z", Token).AsTask());

        missing.Kind.ShouldBe(ErrorKind.Unavailable);
        missing.Message.ShouldStartWith("node node-z has no Running and Ready agent");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_changed_pod_ip_or_a_restarted_pod_gets_a_new_client_and_the_old_one_is_closed()
    {
        await CreateTlsSecretAsync(Issued());
        var second = IPAddress.Parse("127.0.0.2");
        await using var agent = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")), IPAddress.Loopback, second);
        var pod = await PublishAgentPodAsync("node-a", agent.Port);
        using var directory = Directory();
        var first = await directory.GetAsync("node-a", Token);
        await first.GetNodeInfoAsync(Token);

        await SetStatusAsync(pod, "Running", ready: true, podIp: "127.0.0.2");
        var moved = await directory.GetAsync("node-a", Token);
        var closed = await Should.ThrowAsync<PodMigrateException>(() => first.GetNodeInfoAsync(Token));
        (await moved.GetNodeInfoAsync(Token)).NodeName.ShouldBe("node-a");

        // The DaemonSet replaced the pod: same address, a new pod (the old one may linger while it terminates).
        await _api.DeleteAsync(KubeResources.V1Pods, Namespace, pod.Metadata.Name!, null, Token);
        await CreateAsync(AgentPod("node-a", agent.Port, name: "podmigrate-agent-x7k2p"), "Running", ready: true, podIp: "127.0.0.2");
        var restarted = await directory.GetAsync("node-a", Token);

        moved.ShouldNotBeSameAs(first);
        moved.Target.ShouldStartWith($"https://127.0.0.2:{agent.Port}");
        closed.Kind.ShouldBe(ErrorKind.Unavailable);
        closed.Message.ShouldContain("was closed");
        restarted.ShouldNotBeSameAs(moved);
        (await directory.ListAsync(Token)).Single().Pod.ShouldBe($"{Namespace}/podmigrate-agent-x7k2p");
        (await restarted.GetNodeInfoAsync(Token)).NodeName.ShouldBe("node-a");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task An_agent_answering_for_another_node_is_refused()
    {
        await CreateTlsSecretAsync(Issued());
        await using var agentA = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
        // node-b's pod points at node-a's agent (a stale IP, or an impostor): its certificate does not name node-b.
        await PublishAgentPodAsync("node-b", agentA.Port);
        using var directory = Directory();

        var client = await directory.GetAsync("node-b", Token);
        var refused = await Should.ThrowAsync<PodMigrateException>(() => client.GetNodeInfoAsync(Token));

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        refused.Message.ShouldContain("(TLS name node-b)");
        refused.Message.ShouldContain("RemoteCertificateNameMismatch");
        agentA.Calls.ShouldBe(0);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Credentials_come_from_the_secret_and_a_missing_or_incomplete_secret_says_which()
    {
        await using var agent = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
        await PublishAgentPodAsync("node-a", agent.Port);
        using var directory = Directory();

        var missing = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-a", Token).AsTask());
        await CreateTlsSecretAsync(Issued(), without: TlsFileNames.CaBundle);
        var incomplete = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-a", Token).AsTask());
        await _api.DeleteAsync(KubeResources.V1Secrets, Namespace, AgentConnectionOptions.DefaultTlsSecretName, null, Token);
        await CreateTlsSecretAsync(Issued());
        var info = await (await directory.GetAsync("node-a", Token)).GetNodeInfoAsync(Token);

        missing.Kind.ShouldBe(ErrorKind.NotFound);
        missing.Message.ShouldStartWith($"secret {Namespace}/{AgentConnectionOptions.DefaultTlsSecretName} does not exist");
        incomplete.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        incomplete.Message.ShouldContain("has no ca.crt");
        info.NodeName.ShouldBe("node-a");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_client_certificate_the_agents_do_not_trust_is_refused_by_them()
    {
        using var stranger = TestPki.Create("not the agents' CA");
        // The Secret's CA is right for the agents' certificates, its client certificate is from another CA.
        await CreateSecretAsync(new Dictionary<string, string>
        {
            [TlsFileNames.Certificate] = stranger.Ca.IssueClient("podmigrate-controller", TimeSpan.FromDays(1)).CertificatePem,
            [TlsFileNames.Key] = stranger.Ca.IssueClient("x", TimeSpan.FromDays(1)).KeyPem,
            [TlsFileNames.CaBundle] = _pki.CaPem,
        });
        await using var agent = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
        await PublishAgentPodAsync("node-a", agent.Port);
        using var directory = Directory();

        // A key that does not belong to the certificate is caught before any connection.
        var mismatch = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-a", Token).AsTask());
        mismatch.Kind.ShouldBe(ErrorKind.InvalidArgument);

        await _api.DeleteAsync(KubeResources.V1Secrets, Namespace, AgentConnectionOptions.DefaultTlsSecretName, null, Token);
        var issued = stranger.Ca.IssueClient("podmigrate-controller", TimeSpan.FromDays(1));
        await CreateSecretAsync(new Dictionary<string, string>
        {
            [TlsFileNames.Certificate] = issued.CertificatePem,
            [TlsFileNames.Key] = issued.KeyPem,
            [TlsFileNames.CaBundle] = _pki.CaPem,
        });
        using var second = Directory();
        var refused = await Should.ThrowAsync<PodMigrateException>(async () => await (await second.GetAsync("node-a", Token)).GetNodeInfoAsync(Token));

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        agent.Calls.ShouldBe(0);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_rotated_secret_is_picked_up_after_the_refresh_interval()
    {
        await CreateTlsSecretAsync(Issued("controller-1"));
        await using var agent = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
        await PublishAgentPodAsync("node-a", agent.Port);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var directory = Directory(clock: clock);
        var before = await directory.GetAsync("node-a", Token);

        var rotated = await _api.GetAsync(KubeResources.V1Secrets, Namespace, AgentConnectionOptions.DefaultTlsSecretName, Token);
        var next = _pki.Ca.IssueClient("controller-2", TimeSpan.FromDays(1));
        rotated.Data![TlsFileNames.Certificate] = Encoding.ASCII.GetBytes(next.CertificatePem);
        rotated.Data[TlsFileNames.Key] = Encoding.ASCII.GetBytes(next.KeyPem);
        await _api.ReplaceAsync(KubeResources.V1Secrets, Namespace, AgentConnectionOptions.DefaultTlsSecretName, rotated, Token);
        var beforeInterval = await directory.GetAsync("node-a", Token);
        clock.Advance(TimeSpan.FromMinutes(5));
        var after = await directory.GetAsync("node-a", Token);

        beforeInterval.ShouldBeSameAs(before);
        after.ShouldNotBeSameAs(before);
        (await after.GetNodeInfoAsync(Token)).NodeName.ShouldBe("node-a");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Insecure_mode_talks_cleartext_to_a_local_clusters_agents_without_a_secret()
    {
        await using var agent = await FakeAgentServer.StartAsync("node-a", tls: null);
        await PublishAgentPodAsync("node-a", agent.Port);
        using var directory = Directory(o => o.Insecure = true);

        var client = await directory.GetAsync("node-a", Token);

        client.Target.ShouldBe($"http://127.0.0.1:{agent.Port}");
        (await client.GetNodeInfoAsync(Token)).NodeName.ShouldBe("node-a");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_static_map_reaches_its_agents_with_the_credentials_of_a_directory()
    {
        var tlsDirectory = System.IO.Directory.CreateTempSubdirectory("pm-ctl-tls-").FullName;
        try
        {
            await _pki.Ca.IssueClient("podmigrate-controller", TimeSpan.FromDays(1)).WriteDirectoryAsync(tlsDirectory, _pki.CaPem, Token);
            await using var agent = await FakeAgentServer.StartAsync("node-a", new ServerTlsCredentials(_pki.Server("node-a")));
            var options = Options.Create(new AgentConnectionOptions
            {
                TlsDirectory = tlsDirectory,
                StaticAgents = new() { ["node-a"] = $"127.0.0.1:{agent.Port}", ["node-b"] = "unix:/run/podmigrate/node-b/agent.sock" },
            });
            using var directory = new StaticAgentDirectory(options, api: null, TimeProvider.System, NullLogger<StaticAgentDirectory>.Instance);

            var info = await (await directory.GetAsync("node-a", Token)).GetNodeInfoAsync(Token);
            var listed = await directory.ListAsync(Token);
            var unknown = await Should.ThrowAsync<PodMigrateException>(() => directory.GetAsync("node-z", Token).AsTask());

            info.NodeName.ShouldBe("node-a");
            listed.Select(e => e.Address).ShouldBe([$"https://127.0.0.1:{agent.Port}", "unix:/run/podmigrate/node-b/agent.sock"]);
            unknown.Kind.ShouldBe(ErrorKind.Unavailable);
            unknown.Message.ShouldBe("node node-z has no agent: the static agent map names only node-a, node-b");
        }
        finally
        {
            System.IO.Directory.Delete(tlsDirectory, recursive: true);
        }
    }

    [Fact]
    public void Options_are_validated()
    {
        var validator = new AgentConnectionOptionsValidator();

        validator.Validate(null, new AgentConnectionOptions()).Succeeded.ShouldBeTrue();
        validator.Validate(null, new AgentConnectionOptions { Insecure = true, TlsDirectory = "/x" }).Failed.ShouldBeTrue();
        validator.Validate(null, new AgentConnectionOptions { TlsSecretName = "" }).FailureMessage.ShouldNotBeNull().ShouldContain("needs Agents:TlsSecretName or Agents:TlsDirectory");
        validator.Validate(null, new AgentConnectionOptions { PortName = "" }).Failed.ShouldBeTrue();
        validator.Validate(null, new AgentConnectionOptions { ConnectTimeout = TimeSpan.Zero }).Failed.ShouldBeTrue();
    }

    private KubernetesAgentDirectory Directory(Action<AgentConnectionOptions>? configure = null, TimeProvider? clock = null)
    {
        var options = new AgentConnectionOptions { ConnectTimeout = TimeSpan.FromSeconds(5) };
        configure?.Invoke(options);
        return new KubernetesAgentDirectory(_api, Options.Create(options), clock ?? TimeProvider.System, NullLogger<KubernetesAgentDirectory>.Instance);
    }

    private IssuedCertificate Issued(string name = "podmigrate-controller") => _pki.Ca.IssueClient(name, TimeSpan.FromDays(1));

    private Task CreateTlsSecretAsync(IssuedCertificate client, string? without = null)
    {
        var data = new Dictionary<string, string>
        {
            [TlsFileNames.Certificate] = client.CertificatePem,
            [TlsFileNames.Key] = client.KeyPem,
            [TlsFileNames.CaBundle] = _pki.CaPem,
        };
        if (without is not null)
        {
            data.Remove(without);
        }
        return CreateSecretAsync(data);
    }

    private async Task CreateSecretAsync(Dictionary<string, string> data)
        => await _api.CreateAsync(KubeResources.V1Secrets, Namespace, new V1Secret
        {
            Metadata = new V1ObjectMeta { Name = AgentConnectionOptions.DefaultTlsSecretName, NamespaceProperty = Namespace },
            Type = "kubernetes.io/tls",
            Data = data.ToDictionary(d => d.Key, d => Encoding.ASCII.GetBytes(d.Value)),
        }, Token);

    /// <summary>A mirror pod as the node emulator publishes it for a node's agent.</summary>
    private static V1Pod AgentPod(string node, int port, Dictionary<string, string>? labels = null, string? name = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name ?? $"podmigrate-agent-{node}",
            NamespaceProperty = Namespace,
            Labels = labels ?? new Dictionary<string, string> { ["app.kubernetes.io/name"] = "podmigrate-agent" },
        },
        Spec = new V1PodSpec
        {
            NodeName = node,
            HostNetwork = true,
            Containers = [new V1Container { Name = "agent", Image = "podmigrate/agent:local", Ports = [new V1ContainerPort { Name = "grpc", ContainerPort = port, Protocol = "TCP" }] }],
        },
    };

    private Task<V1Pod> PublishAgentPodAsync(string node, int port, string phase = "Running", bool ready = true, string podIp = "127.0.0.1")
        => CreateAsync(AgentPod(node, port), phase, ready, podIp);

    private async Task<V1Pod> CreateAsync(V1Pod pod, string phase, bool ready, string podIp)
        => await SetStatusAsync(await _api.CreateAsync(KubeResources.V1Pods, Namespace, pod, Token), phase, ready, podIp);

    private async Task<V1Pod> SetStatusAsync(V1Pod pod, string phase, bool ready, string podIp)
    {
        pod.Status = new V1PodStatus
        {
            Phase = phase,
            PodIP = podIp,
            HostIP = podIp,
            Conditions = [new V1PodCondition { Type = "Ready", Status = ready ? "True" : "False" }],
        };
        return await _api.ReplaceStatusAsync(KubeResources.V1Pods, Namespace, pod.Metadata.Name!, pod, Token);
    }
}
