using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;

namespace PodMigrate.Kube.Tests;

/// <summary>A fresh in-process API server on a free loopback port, and a client of it over real HTTP.</summary>
internal sealed class ApiServerFixture : IAsyncDisposable
{
    /// <summary>Every test's bound: a hang fails the test instead of the run.</summary>
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    private ApiServerFixture(KubeApiServer server, KubernetesApiClient client, CancellationTokenSource timeout)
    {
        Server = server;
        Client = client;
        Timeout = timeout;
    }

    public KubeApiServer Server { get; }

    public KubernetesApiClient Client { get; }

    public CancellationTokenSource Timeout { get; }

    public CancellationToken Token => Timeout.Token;

    public static async Task<ApiServerFixture> StartAsync(ApiServerOptions? options = null)
    {
        var timeout = new CancellationTokenSource(TestTimeout);
        var server = await KubeApiServer.StartAsync(options ?? new ApiServerOptions(), configureLogging: null, timeout.Token);
        return new ApiServerFixture(server, new KubernetesApiClient(server.ClientConfig), timeout);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Timeout.Dispose();
    }
}
