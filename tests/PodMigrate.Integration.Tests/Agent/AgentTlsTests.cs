using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;
using PodMigrate.Core.Tls;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cli;
using PodMigrate.TestKit.Cluster;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// The real agent serving its TCP port with mutual TLS, with certificates from `podmigrate certs generate`: who gets in
/// (our client, the CLI, python3-grpcio with the controller's certificate) and who does not.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class AgentTlsTests(LocalCluster cluster) : IAsyncLifetime, IDisposable
{
    private const int TestTimeout = 120_000;
    private const string Python = "/usr/bin/python3";

    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(110));
    private readonly string _pki = Directory.CreateTempSubdirectory("pm-pki-").FullName;

    private CancellationToken Token => _timeout.Token;

    private string AgentTls => Path.Combine(_pki, "agents", "node-a");

    private string ControllerTls => Path.Combine(_pki, "clients", "podmigrate-controller");

    public async Task InitializeAsync()
        => (await PodmigrateCli.RunAsync(["certs", "generate", "--out", _pki, "--node", "node-a", "--node", "node-b", "--ip", "10.0.0.7"], Token)).EnsureSuccess();

    public Task DisposeAsync()
    {
        Directory.Delete(_pki, recursive: true);
        return Task.CompletedTask;
    }

    public void Dispose() => _timeout.Dispose();

    [Fact]
    public void Certs_generate_writes_a_ca_agent_and_client_certificates_with_their_names_and_private_keys()
    {
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        const UnixFileMode Public = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        DurableFileSystem.GetMode(Path.Combine(_pki, "ca.key")).ShouldBe(Private);
        DurableFileSystem.GetMode(Path.Combine(_pki, "ca.crt")).ShouldBe(Public);
        foreach (var party in new[] { Path.Combine(_pki, "agents", "node-a"), Path.Combine(_pki, "agents", "node-b"), ControllerTls })
        {
            Directory.EnumerateFiles(party).Select(Path.GetFileName).Order().ShouldBe(["ca.crt", "tls.crt", "tls.key"]);
            DurableFileSystem.GetMode(Path.Combine(party, "tls.key")).ShouldBe(Private);
            DurableFileSystem.GetMode(Path.Combine(party, "tls.crt")).ShouldBe(Public);
            File.ReadAllText(Path.Combine(party, "ca.crt")).ShouldBe(File.ReadAllText(Path.Combine(_pki, "ca.crt")));
        }

        using var nodeB = TlsCertificates.LoadDirectory(Path.Combine(_pki, "agents", "node-b"));
        using var controller = TlsCertificates.LoadDirectory(ControllerTls);
        var names = nodeB.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        names.EnumerateDnsNames().ShouldBe(["node-b", "localhost"]);
        names.EnumerateIPAddresses().ShouldBe([IPAddress.Loopback, IPAddress.Parse("10.0.0.7")]);
        // Server authentication for its gRPC port, code signing for the checkpoints it publishes (see Signed checkpoints).
        Usages(nodeB.Certificate).ShouldBe(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.3"]);
        controller.Certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false).ShouldBe("podmigrate-controller");
        Usages(controller.Certificate).ShouldBe(["1.3.6.1.5.5.7.3.2"]);
        controller.Certificate.GetECDsaPublicKey().ShouldNotBeNull().KeySize.ShouldBe(256);
        using var chain = new X509Chain { ChainPolicy = { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck } };
        chain.ChainPolicy.CustomTrustStore.AddRange(controller.TrustedCas);
        chain.Build(nodeB.Certificate).ShouldBeTrue();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_agent_serves_mutual_tls_to_the_controllers_certificate_and_refuses_everyone_else()
    {
        var layout = Layout();
        try
        {
            await using var agent = await TestAgent.StartAsync(layout, Token);
            var address = $"https://127.0.0.1:{layout.GrpcPort}";
            using var controller = TlsCertificates.LoadDirectory(ControllerTls);
            using var byIp = AgentClient.Connect(address, Options(ClientTlsCredentials.Mutual(controller)));
            using var byNodeName = AgentClient.Connect(address, Options(ClientTlsCredentials.Mutual(controller, "node-a")));
            using var anonymous = AgentClient.Connect(address, Options(new ClientTlsCredentials(controller.TrustedCas)));
            using var stranger = TestPki.Create("a stranger's CA");
            using var strangerClient = stranger.Client();
            using var foreign = AgentClient.Connect(address, Options(new ClientTlsCredentials(controller.TrustedCas, strangerClient.Certificate)));
            using var nodeB = TlsCertificates.LoadDirectory(Path.Combine(_pki, "agents", "node-b"));
            using var otherAgent = AgentClient.Connect(address, Options(ClientTlsCredentials.Mutual(nodeB)));
            using var impostorCheck = AgentClient.Connect(address, Options(ClientTlsCredentials.Mutual(controller, "node-b")));
            using var cleartext = AgentClient.Connect($"http://127.0.0.1:{layout.GrpcPort}");

            var info = await byIp.GetNodeInfoAsync(Token);
            var health = await byNodeName.HealthAsync(Token);
            var noCertificate = await Should.ThrowAsync<PodMigrateException>(() => anonymous.HealthAsync(Token));
            var otherCa = await Should.ThrowAsync<PodMigrateException>(() => foreign.HealthAsync(Token));
            var serverCertificateAsClient = await Should.ThrowAsync<PodMigrateException>(() => otherAgent.HealthAsync(Token));
            var wrongName = await Should.ThrowAsync<PodMigrateException>(() => impostorCheck.HealthAsync(Token));
            var plain = await Should.ThrowAsync<PodMigrateException>(() => cleartext.HealthAsync(Token));
            var overUnixSocket = await agent.Client.HealthAsync(Token);

            info.NodeName.ShouldBe("node-a");
            info.ContainerdVersion.ShouldNotBeNullOrEmpty();
            health.Problems.ShouldBeEmpty();
            // grpc-dotnet reports a refused handshake as Unavailable; the TLS reason is in the inner exceptions.
            foreach (var refused in new[] { noCertificate, otherCa, serverCertificateAsClient })
            {
                refused.Kind.ShouldBe(ErrorKind.Unavailable);
                refused.Message.ShouldStartWith($"checking health on the agent at {address}: ");
            }
            wrongName.Kind.ShouldBe(ErrorKind.Unavailable);
            wrongName.Message.ShouldStartWith($"checking health on the agent at {address} (TLS name node-b): ");
            Causes(wrongName).ShouldContain(m => m.Contains("RemoteCertificateNameMismatch"));
            plain.Kind.ShouldBe(ErrorKind.Unavailable);
            // The unix socket stays cleartext, for root only.
            overUnixSocket.Problems.ShouldBeEmpty();
            DurableFileSystem.GetMode(layout.Socket).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        finally
        {
            Directory.Delete(layout.Directory, recursive: true);
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_agent_process_with_tls_dir_listens_beyond_loopback_and_the_cli_reaches_it_with_its_tls_dir()
    {
        var layout = Layout() with { ListenAddress = "0.0.0.0" };
        try
        {
            await using var agent = await AgentProcess.StartAsync(layout, Token);
            var address = $"https://127.0.0.1:{layout.GrpcPort}";

            var withFlag = await PodmigrateCli.RunAsync(["info", "--agent", address, "--tls-dir", ControllerTls, "-o", "json"], Token);
            var withEnvironment = await PodmigrateCli.RunAsync(["checkpoints", "ls", "--agent", $"https://localhost:{layout.GrpcPort}", "-o", "json"], Token,
                new Dictionary<string, string?> { ["PODMIGRATE_TLS_DIR"] = ControllerTls });
            // --node on a local cluster with a TLS directory: the node's agentPort from cluster.json, its name as the TLS name.
            await File.WriteAllTextAsync(Path.Combine(layout.Directory, "cluster.json"),
                $$"""{"runDir": "{{layout.Directory}}", "nodes": [{"name": "node-a", "agentPort": {{layout.GrpcPort}}}]}""", Token);
            var byNode = await PodmigrateCli.RunAsync(["info", "--node", "node-a", "-o", "json"], Token,
                new Dictionary<string, string?> { ["PODMIGRATE_TLS_DIR"] = ControllerTls, ["PODMIGRATE_RUN_DIR"] = layout.Directory });
            var withoutCertificates = await PodmigrateCli.RunAsync(["info", "--agent", address], Token);
            var wrongName = await PodmigrateCli.RunAsync(["info", "--agent", address, "--tls-dir", ControllerTls, "--tls-server-name", "node-b"], Token);

            withFlag.ExitCode.ShouldBe(0, withFlag.StandardError);
            JsonDocument.Parse(withFlag.StandardOutput).RootElement.GetProperty("nodeName").GetString().ShouldBe("node-a");
            withEnvironment.ExitCode.ShouldBe(0, withEnvironment.StandardError);
            byNode.ExitCode.ShouldBe(0, byNode.StandardError);
            JsonDocument.Parse(byNode.StandardOutput).RootElement.GetProperty("nodeName").GetString().ShouldBe("node-a");
            withoutCertificates.ExitCode.ShouldBe(2);
            withoutCertificates.StandardError.ShouldContain("--tls-dir DIR or $PODMIGRATE_TLS_DIR");
            wrongName.ExitCode.ShouldBe(5);
            wrongName.StandardError.ShouldContain("RemoteCertificateNameMismatch");
        }
        finally
        {
            Directory.Delete(layout.Directory, recursive: true);
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_agent_refuses_cleartext_beyond_loopback_unless_told_it_is_local()
    {
        var port = TestAgentLayout.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var state = Directory.CreateTempSubdirectory("pm-agent-refuse-").FullName;
        try
        {
            // The agent binary the cluster runs ($PODMIGRATE_AGENT_BIN: podmigrate-agent NativeAOT), else `podmigrate agent`.
            var refused = await AgentBinary.RunAsync(
                ["agent", "--node", "node-a", "--socket", Path.Combine(state, "agent.sock"), "--port", port, "--listen", "0.0.0.0",
                 "--share", Path.Combine(state, "share"), "--state-dir", state], Token);
            var contradictory = await AgentBinary.RunAsync(
                ["agent", "--node", "node-a", "--socket", Path.Combine(state, "agent.sock"), "--port", port, "--listen", "0.0.0.0",
                 "--share", Path.Combine(state, "share"), "--state-dir", state, "--tls-dir", AgentTls, "--insecure-tcp"], Token);

            refused.ExitCode.ShouldBe(2);
            refused.StandardError.ShouldContain("refusing to serve the agent API in cleartext on 0.0.0.0");
            refused.StandardError.ShouldContain("--insecure-tcp");
            contradictory.ExitCode.ShouldBe(2);
            contradictory.StandardError.ShouldContain("InsecureTcp contradicts the TLS settings");
        }
        finally
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Python_grpcio_calls_the_agent_over_mutual_tls_and_is_refused_without_a_client_certificate()
    {
        if (!File.Exists(Python))
        {
            throw new InvalidOperationException($"{Python} is missing: install python3-grpcio (scripts/setup.sh)");
        }
        var layout = Layout();
        try
        {
            await using var agent = await TestAgent.StartAsync(layout, Token);
            var script = Path.Combine(AppContext.BaseDirectory, "Agent", "grpcio_agent_client.py");
            var run = (await ProcessRunner.RunAsync(
                new ProcessSpec(Python, [script, "--tls", ControllerTls, "node-a", $"127.0.0.1:{layout.GrpcPort}"]) { Timeout = TimeSpan.FromSeconds(90) }, Token)).EnsureSuccess();

            using var results = JsonDocument.Parse(run.StandardOutput);
            results.RootElement.GetProperty("info").GetProperty("node").GetString().ShouldBe("node-a");
            results.RootElement.GetProperty("health").GetInt32().ShouldBe(1);
            results.RootElement.GetProperty("inspect_missing").GetProperty("code").GetString().ShouldBe("NOT_FOUND");
            results.RootElement.GetProperty("without_client_certificate").GetProperty("code").GetString().ShouldBe("UNAVAILABLE");
            results.ShouldServeHealthAndReflection();
        }
        finally
        {
            Directory.Delete(layout.Directory, recursive: true);
        }
    }

    private TestAgentLayout Layout()
        => TestAgentLayout.ForNode("node-a", cluster.Info.Node("node-a").ContainerdSocket) with { GrpcPort = TestAgentLayout.FreePort(), TlsDirectory = AgentTls };

    private static GrpcConnectOptions Options(ClientTlsCredentials credentials) => new() { Tls = credentials, ConnectTimeout = TimeSpan.FromSeconds(10) };

    private static List<string> Causes(Exception e)
    {
        var messages = new List<string>();
        for (Exception? cause = e; cause is not null; cause = cause.InnerException ?? (cause as Grpc.Core.RpcException)?.Status.DebugException)
        {
            messages.Add(cause.Message);
        }
        return messages;
    }

    private static IEnumerable<string?> Usages(X509Certificate2 certificate)
        => certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Select(o => o.Value);
}
