using System.Net;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tests.Store;
using PodMigrate.Core.Tls;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>
/// Mutual TLS on our grpc-dotnet seams (<see cref="GrpcChannels"/> and <see cref="GrpcKestrelExtensions.ListenGrpcTcp"/>):
/// what gets through, and that everything else is refused in the handshake. A refusal is judged the way every client of
/// ours sees it, through <see cref="ErrorMapping.ToException"/>: Unavailable, the TLS reason in the message. (grpc-dotnet's
/// own status is not the contract: it says Internal when the client refuses the server's certificate.)
/// </summary>
[Trait("Category", "Integration")]
public sealed class GrpcTlsTests : IAsyncLifetime, IDisposable
{
    private const int TestTimeout = 30_000;

    private readonly TestPki _pki = TestPki.Create();
    private TlsTestServer _server = null!;

    public async Task InitializeAsync()
        => _server = await TlsTestServer.StartAsync(new ServerTlsCredentials(_pki.Server("node-a", "localhost", "127.0.0.1")));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _pki.Dispose();

    private GrpcChannel Channel(ClientTlsCredentials credentials, Uri? address = null)
        => GrpcChannels.ForAddress(address ?? _server.TcpAddress, new GrpcConnectOptions { Tls = credentials, ConnectTimeout = TimeSpan.FromSeconds(5) });

    private static async Task<HealthCheckResponse.Types.ServingStatus> CheckAsync(GrpcChannel channel)
        => (await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest())).Status;

    /// <summary>The failed health check as our clients report it (agent, containerd and CRI clients all translate with ErrorMapping).</summary>
    private static async Task<PodMigrateException> RefusedAsync(GrpcChannel channel)
        => ErrorMapping.ToException(await Should.ThrowAsync<RpcException>(() => CheckAsync(channel)), "checking health");

    private static IEnumerable<string> Causes(Exception e)
    {
        for (Exception? cause = e; cause is not null; cause = cause.InnerException ?? (cause as RpcException)?.Status.DebugException)
        {
            yield return cause.Message;
        }
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_right_client_certificate_gets_answers_over_tls_by_ip_and_by_name()
    {
        using var client = _pki.Client();
        using var byIp = Channel(ClientTlsCredentials.Mutual(client));
        using var byName = Channel(ClientTlsCredentials.Mutual(client, targetNameOverride: "node-a"));
        using var byLocalhost = Channel(ClientTlsCredentials.Mutual(client), new UriBuilder(_server.TcpAddress) { Host = "localhost" }.Uri);

        (await CheckAsync(byIp)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);
        (await CheckAsync(byName)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);
        (await CheckAsync(byLocalhost)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);

        _server.TcpAddress.Scheme.ShouldBe("https");
        GrpcChannels.Describe(_server.TcpAddress, new GrpcConnectOptions { Tls = ClientTlsCredentials.Mutual(client, "node-a") })
            .ShouldBe($"https://127.0.0.1:{_server.TcpAddress.Port} (TLS name node-a)");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_client_without_a_certificate_is_refused()
    {
        using var channel = Channel(new ClientTlsCredentials(_pki.Ca.CertificateCollection()));

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable, refused.ToString());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_client_certificate_from_another_ca_is_refused()
    {
        using var otherPki = TestPki.Create("another CA");
        using var stranger = otherPki.Client();
        // The stranger trusts our CA for the server: only its own certificate is wrong.
        using var channel = Channel(new ClientTlsCredentials(_pki.Ca.CertificateCollection(), stranger.Certificate));

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable, refused.ToString());
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_server_certificate_cannot_pass_as_a_client_certificate()
    {
        // Same CA, but issued for server authentication only: an agent must not be able to call another agent.
        using var agent = _pki.Server("node-b");
        using var channel = Channel(ClientTlsCredentials.Mutual(agent));

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_certificate_from_an_unknown_ca()
    {
        using var otherPki = TestPki.Create("impostor CA");
        using var client = _pki.Client();
        using var channel = Channel(new ClientTlsCredentials(otherPki.Ca.CertificateCollection(), client.Certificate));

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        Causes(refused).ShouldContain(m => m.Contains("certificate chain") || m.Contains("UntrustedRoot") || m.Contains("PartialChain"));
        refused.Message.ShouldStartWith("checking health: ");
        refused.Message.ShouldContain("The SSL connection could not be established");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_certificate_for_another_name()
    {
        using var client = _pki.Client();
        // The server's certificate names node-a, localhost and 127.0.0.1: not node-b.
        using var channel = Channel(ClientTlsCredentials.Mutual(client, targetNameOverride: "node-b"));

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        Causes(refused).ShouldContain(m => m.Contains("RemoteCertificateNameMismatch"));
        refused.Message.ShouldContain("RemoteCertificateNameMismatch");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_whose_certificate_lacks_the_address_it_dials()
    {
        await using var server = await TlsTestServer.StartAsync(new ServerTlsCredentials(_pki.Server("node-a")));
        using var client = _pki.Client();
        using var channel = Channel(ClientTlsCredentials.Mutual(client), server.TcpAddress);

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        Causes(refused).ShouldContain(m => m.Contains("RemoteCertificateNameMismatch"));
        refused.Message.ShouldContain("RemoteCertificateNameMismatch");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_cleartext_client_on_the_tls_port_fails_clearly()
    {
        using var channel = GrpcChannels.ForAddress(new UriBuilder(_server.TcpAddress) { Scheme = "http" }.Uri);

        var failed = await RefusedAsync(channel);

        failed.Kind.ShouldBe(ErrorKind.Unavailable);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_tls_client_on_a_cleartext_port_fails_clearly()
    {
        await using var plain = await TlsTestServer.StartAsync(null);
        using var client = _pki.Client();
        using var channel = Channel(ClientTlsCredentials.Mutual(client), new UriBuilder(plain.TcpAddress) { Scheme = "https" }.Uri);

        var failed = await RefusedAsync(channel);

        failed.Kind.ShouldBe(ErrorKind.Unavailable);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_an_expired_server_certificate()
    {
        var past = new FakeTimeProvider(DateTimeOffset.UtcNow.AddDays(-3));
        using var oldCa = CertificateAuthority.Create("old CA", TimeSpan.FromDays(10), past);
        var expired = oldCa.IssueServer("node-a", [], [System.Net.IPAddress.Loopback], TimeSpan.FromDays(1));
        using var serverCertificates = TlsCertificates.FromPem(expired.CertificatePem, expired.KeyPem, oldCa.CertificatePem, "expired");
        await using var server = await TlsTestServer.StartAsync(new ServerTlsCredentials(serverCertificates));
        var client = oldCa.IssueClient("podmigrate-controller", TimeSpan.FromDays(10));
        using var clientCertificates = TlsCertificates.FromPem(client.CertificatePem, client.KeyPem, oldCa.CertificatePem, "client");
        using var channel = Channel(ClientTlsCredentials.Mutual(clientCertificates), server.TcpAddress);

        var refused = await RefusedAsync(channel);

        refused.Kind.ShouldBe(ErrorKind.Unavailable);
        Causes(refused).ShouldContain(m => m.Contains("NotTimeValid"));
        refused.Message.ShouldContain("NotTimeValid");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_rotated_server_certificate_is_served_to_new_connections_without_a_restart()
    {
        var directory = Directory.CreateTempSubdirectory("pm-tls-rotate-").FullName;
        try
        {
            await _pki.Ca.IssueServer("node-a", ["node-a"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(directory, _pki.CaPem, CancellationToken.None);
            var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
            using var files = TlsCertificateFiles.ForDirectory(directory, clock, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            await using var server = await TlsTestServer.StartAsync(new ServerTlsCredentials(() => files.Current));
            using var client = _pki.Client();
            using var before = Channel(ClientTlsCredentials.Mutual(client, "node-a"), server.TcpAddress);
            (await CheckAsync(before)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);

            await _pki.Ca.IssueServer("node-a2", ["node-a2"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(directory, _pki.CaPem, CancellationToken.None);
            clock.Advance(TlsCertificateFiles.CheckInterval);
            using var oldName = Channel(ClientTlsCredentials.Mutual(client, "node-a"), server.TcpAddress);
            using var newName = Channel(ClientTlsCredentials.Mutual(client, "node-a2"), server.TcpAddress);

            var oldNameRefused = await RefusedAsync(oldName);
            oldNameRefused.Kind.ShouldBe(ErrorKind.Unavailable);
            oldNameRefused.Message.ShouldContain("RemoteCertificateNameMismatch");
            (await CheckAsync(newName)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);
            // The connection made before the rotation goes on with the certificate it was made with.
            (await CheckAsync(before)).ShouldBe(HealthCheckResponse.Types.ServingStatus.Serving);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Credentials_and_scheme_must_agree()
    {
        using var client = _pki.Client();

        Should.Throw<ArgumentException>(() => GrpcChannels.ForAddress(new Uri("https://127.0.0.1:1")))
            .Message.ShouldContain("needs TLS credentials");
        Should.Throw<ArgumentException>(() => GrpcChannels.ForAddress(new Uri("http://127.0.0.1:1"), new GrpcConnectOptions { Tls = ClientTlsCredentials.Mutual(client) }))
            .Message.ShouldContain("need an https:// address");
        Should.Throw<ArgumentException>(() => GrpcChannels.ForUnixSocket("/run/x.sock", new GrpcConnectOptions { Tls = ClientTlsCredentials.Mutual(client) }));
    }
}

internal static class CertificateAuthorityTestExtensions
{
    public static System.Security.Cryptography.X509Certificates.X509Certificate2Collection CertificateCollection(this CertificateAuthority ca) => [ca.Certificate];
}

/// <summary>A Kestrel on loopback serving grpc.health.v1 (grpc-dotnet) through our TCP endpoint setup.</summary>
internal sealed class TlsTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TlsTestServer(WebApplication app, Uri address)
    {
        _app = app;
        TcpAddress = address;
    }

    public Uri TcpAddress { get; }

    public static async Task<TlsTestServer> StartAsync(ServerTlsCredentials? tls)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpcTcp(new IPEndPoint(IPAddress.Loopback, 0), tls));
        builder.Services.AddGrpc();
        // grpc-dotnet answers the server-wide service ("") from the registered health checks, and Unknown when there are
        // none: one that always passes makes a server that is up answer Serving, like the agent's "node" check does.
        builder.Services.AddGrpcHealthChecks().AddCheck("up", () => HealthCheckResult.Healthy());
        var app = builder.Build();
        app.MapGrpcHealthChecksService();
        await app.StartAsync();
        var bound = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        return new TlsTestServer(app, new UriBuilder(bound) { Scheme = tls is null ? "http" : "https", Host = "127.0.0.1" }.Uri);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
