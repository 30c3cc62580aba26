using System.Net;
using System.Net.Sockets;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;

namespace PodMigrate.Core.Tests.Images;

/// <summary>Failure paths that need no registry; the real push/pull round trip is in the integration tests.</summary>
[Trait("Category", "Unit")]
public sealed class RegistryClientTests
{
    [Fact(Timeout = 30_000)]
    public async Task A_registry_that_is_not_listening_is_Unavailable_and_named()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        using var http = new HttpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var client = new RegistryClient(http);

        var error = await Should.ThrowAsync<PodMigrateException>(() => client.GetManifestAsync(ImageReference.Parse($"127.0.0.1:{port}/podmigrate/counter:1"), timeout.Token));

        error.Kind.ShouldBe(ErrorKind.Unavailable);
        error.Message.ShouldContain($"127.0.0.1:{port}");
        error.Message.ShouldContain("ConnectionRefused");
    }
}
