using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tests.Store;
using PodMigrate.Core.Tests.Grpc.TestProto;
using PodMigrate.Core.Tls;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>
/// Mutual TLS in the gRPC layer, our client against a real Kestrel: what gets through, and that everything else is
/// refused in the handshake with an error that names the target.
/// </summary>
[Trait("Category", "Integration")]
public sealed class GrpcTlsTests : IAsyncLifetime, IDisposable
{
    private const int TestTimeout = 30_000;

    private readonly TestPki _pki = TestPki.Create();
    private GrpcTestServer _server = null!;

    public async Task InitializeAsync()
        => _server = await GrpcTestServer.StartAsync(new SslServerCredentials(_pki.Server("node-a", "localhost", "127.0.0.1")));

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _pki.Dispose();

    private GrpcChannel Channel(ChannelCredentials credentials, Uri? address = null)
        => GrpcChannel.ForAddress(address ?? _server.TcpAddress, new GrpcChannelOptions { Credentials = credentials, ConnectTimeout = TimeSpan.FromSeconds(5) });

    [Fact(Timeout = TestTimeout)]
    public async Task The_right_client_certificate_gets_answers_over_tls_by_ip_and_by_name()
    {
        using var client = _pki.Client();
        using var byIp = Channel(SslCredentials.Mutual(client));
        using var byName = Channel(SslCredentials.Mutual(client, targetNameOverride: "node-a"));
        using var byLocalhost = Channel(SslCredentials.Mutual(client), new UriBuilder(_server.TcpAddress) { Host = "localhost" }.Uri);

        (await byIp.UnaryAsync(TestService.Echo, new EchoRequest { Text = "ip" })).Text.ShouldBe("ip");
        (await byName.UnaryAsync(TestService.Echo, new EchoRequest { Text = "name" })).Text.ShouldBe("name");
        (await byLocalhost.UnaryAsync(TestService.Echo, new EchoRequest { Text = "localhost" })).Text.ShouldBe("localhost");
        var streamed = new List<int>();
        await foreach (var reply in byIp.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 50 }))
        {
            streamed.Add(reply.N);
        }

        _server.TcpAddress.Scheme.ShouldBe("https");
        byIp.IsSecure.ShouldBeTrue();
        byName.Target.ShouldBe($"https://127.0.0.1:{_server.TcpAddress.Port} (TLS name node-a)");
        streamed.ShouldBe(Enumerable.Range(1, 50));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_client_without_a_certificate_is_refused()
    {
        using var channel = Channel(new SslCredentials(_pki.Ca.CertificateCollection()));

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldStartWith(channel.Target);
        refused.Status.Detail.ShouldContain("it most likely refused this client's certificate");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_client_certificate_from_another_ca_is_refused()
    {
        using var otherPki = TestPki.Create("another CA");
        using var stranger = otherPki.Client();
        // The stranger trusts our CA for the server: only its own certificate is wrong.
        using var channel = Channel(new SslCredentials(_pki.Ca.CertificateCollection(), stranger.Certificate));

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldStartWith(channel.Target);
        refused.Status.Detail.ShouldContain("it most likely refused this client's certificate");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_server_certificate_cannot_pass_as_a_client_certificate()
    {
        // Same CA, but issued for server authentication only: an agent must not be able to call another agent.
        using var agent = _pki.Server("node-b");
        using var channel = Channel(SslCredentials.Mutual(agent));

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldContain("it most likely refused this client's certificate");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_certificate_from_an_unknown_ca()
    {
        using var otherPki = TestPki.Create("impostor CA");
        using var client = _pki.Client();
        using var channel = Channel(new SslCredentials(otherPki.Ca.CertificateCollection(), client.Certificate));

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldContain($"cannot connect to {channel.Target}: TLS handshake failed");
        refused.Status.Detail.ShouldContain("certificate chain");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_certificate_for_another_name()
    {
        using var client = _pki.Client();
        // The server's certificate names node-a, localhost and 127.0.0.1: not node-b.
        using var channel = Channel(SslCredentials.Mutual(client, targetNameOverride: "node-b"));

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldContain("(TLS name node-b): TLS handshake failed");
        refused.Status.Detail.ShouldContain("RemoteCertificateNameMismatch");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_a_server_whose_certificate_lacks_the_address_it_dials()
    {
        await using var server = await GrpcTestServer.StartAsync(new SslServerCredentials(_pki.Server("node-a")));
        using var client = _pki.Client();
        using var channel = Channel(SslCredentials.Mutual(client), server.TcpAddress);

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldContain("RemoteCertificateNameMismatch");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_cleartext_client_on_the_tls_port_fails_clearly()
    {
        using var channel = GrpcChannel.ForAddress(new UriBuilder(_server.TcpAddress) { Scheme = "http" }.Uri);

        var failed = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        failed.StatusCode.ShouldBe(StatusCode.Unavailable);
        failed.Status.Detail.ShouldStartWith(channel.Target);
        failed.Status.Detail.ShouldContain("if it serves TLS, connect with https://");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_tls_client_on_a_cleartext_port_fails_clearly()
    {
        await using var plain = await GrpcTestServer.StartAsync();
        using var client = _pki.Client();
        using var channel = Channel(SslCredentials.Mutual(client), new UriBuilder(plain.TcpAddress) { Scheme = "https" }.Uri);

        var failed = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        failed.StatusCode.ShouldBe(StatusCode.Unavailable);
        failed.Status.Detail.ShouldContain($"cannot connect to {channel.Target}: TLS handshake failed");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task The_client_refuses_an_expired_server_certificate()
    {
        var past = new ManualTimeProvider(DateTimeOffset.UtcNow.AddDays(-3));
        using var oldCa = CertificateAuthority.Create("old CA", TimeSpan.FromDays(10), past);
        var expired = oldCa.IssueServer("node-a", [], [System.Net.IPAddress.Loopback], TimeSpan.FromDays(1));
        using var serverCertificates = TlsCertificates.FromPem(expired.CertificatePem, expired.KeyPem, oldCa.CertificatePem, "expired");
        await using var server = await GrpcTestServer.StartAsync(new SslServerCredentials(serverCertificates));
        var client = oldCa.IssueClient("podmigrate-controller", TimeSpan.FromDays(10));
        using var clientCertificates = TlsCertificates.FromPem(client.CertificatePem, client.KeyPem, oldCa.CertificatePem, "client");
        using var channel = Channel(SslCredentials.Mutual(clientCertificates), server.TcpAddress);

        var refused = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        refused.StatusCode.ShouldBe(StatusCode.Unavailable);
        refused.Status.Detail.ShouldContain("TLS handshake failed");
        refused.Status.Detail.ShouldContain("NotTimeValid");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_rotated_server_certificate_is_served_to_new_connections_without_a_restart()
    {
        var directory = Directory.CreateTempSubdirectory("pm-tls-rotate-").FullName;
        try
        {
            await _pki.Ca.IssueServer("node-a", ["node-a"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(directory, _pki.CaPem, CancellationToken.None);
            var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
            using var files = TlsCertificateFiles.ForDirectory(directory, clock, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            await using var server = await GrpcTestServer.StartAsync(new SslServerCredentials(() => files.Current));
            using var client = _pki.Client();
            using var before = Channel(SslCredentials.Mutual(client, "node-a"), server.TcpAddress);
            await before.UnaryAsync(TestService.Echo, new EchoRequest());

            await _pki.Ca.IssueServer("node-a2", ["node-a2"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(directory, _pki.CaPem, CancellationToken.None);
            clock.Advance(TlsCertificateFiles.CheckInterval);
            using var oldName = Channel(SslCredentials.Mutual(client, "node-a"), server.TcpAddress);
            using var newName = Channel(SslCredentials.Mutual(client, "node-a2"), server.TcpAddress);

            (await Should.ThrowAsync<RpcException>(() => oldName.UnaryAsync(TestService.Echo, new EchoRequest()))).Status.Detail.ShouldContain("RemoteCertificateNameMismatch");
            (await newName.UnaryAsync(TestService.Echo, new EchoRequest { Text = "rotated" })).Text.ShouldBe("rotated");
            // The connection made before the rotation goes on with the certificate it was made with.
            (await before.UnaryAsync(TestService.Echo, new EchoRequest { Text = "still" })).Text.ShouldBe("still");
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

        Should.Throw<ArgumentException>(() => GrpcChannel.ForAddress(new Uri("https://127.0.0.1:1")))
            .Message.ShouldContain("needs TLS credentials");
        Should.Throw<ArgumentException>(() => GrpcChannel.ForAddress(new Uri("http://127.0.0.1:1"), new GrpcChannelOptions { Credentials = SslCredentials.Mutual(client) }))
            .Message.ShouldContain("need an https:// address");
        Should.Throw<ArgumentException>(() => GrpcChannel.ForUnixSocket("/run/x.sock", new GrpcChannelOptions { Credentials = SslCredentials.Mutual(client) }));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_call_on_a_closed_channel_fails_with_unavailable()
    {
        using var client = _pki.Client();
        var channel = Channel(SslCredentials.Mutual(client));
        await channel.UnaryAsync(TestService.Echo, new EchoRequest());

        channel.Dispose();
        var failed = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        failed.StatusCode.ShouldBe(StatusCode.Unavailable);
        failed.Status.Detail.ShouldContain("was closed");
    }
}

internal static class CertificateAuthorityTestExtensions
{
    public static System.Security.Cryptography.X509Certificates.X509Certificate2Collection CertificateCollection(this CertificateAuthority ca) => [ca.Certificate];
}
