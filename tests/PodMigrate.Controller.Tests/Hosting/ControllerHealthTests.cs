using System.Net;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Hosting;
using PodMigrate.Controller.Tests.Runtime;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Tests.Hosting;

/// <summary>
/// The controller as a generic-host application against the in-process API server: /readyz means the informers have
/// synced and the API server answers now (and says whether the replica leads, which readiness does not need); /livez
/// means the controller's loop runs.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ControllerHealthTests
{
    [Fact]
    public async Task Readyz_is_503_until_the_informers_sync_then_200_and_503_again_when_the_API_server_stops_while_livez_stays_200()
    {
        using var timeout = new CancellationTokenSource(ApiServerFixture.TestTimeout);
        var token = timeout.Token;
        var server = await KubeApiServer.StartAsync(new ApiServerOptions(), configureLogging: null, token);
        var serverStopped = false;
        try
        {
            using var client = new KubernetesApiClient(server.ClientConfig);
            await PodMigrationCrd.InstallAsync(client, token);
            using var controlled = new ControlledApi(client);
            // The API server answers, but no list succeeds: the informers cannot sync.
            controlled.FailLists(int.MaxValue);
            await using var replica = await Replica.StartAsync(controlled, "controller-0", token);

            var (status, body) = await replica.GetAsync("/readyz", token);
            status.ShouldBe(HttpStatusCode.ServiceUnavailable);
            body.ShouldContain("[-]informers failed: not synced");
            body.ShouldContain("[+]apiserver ok");
            body.ShouldContain("readyz check failed");
            (await replica.GetAsync("/livez", token)).Status.ShouldBe(HttpStatusCode.OK);

            controlled.FailLists(0);
            (status, body) = await replica.EventuallyAsync("/readyz", (s, b) => s == HttpStatusCode.OK && b.Contains("leading", StringComparison.Ordinal), token);
            body.ShouldContain("[+]informers ok: podmigrations.podmigrate.io, pods synced");
            body.ShouldContain("[+]leader ok: leading (lease default/podmigrate-controller held by controller-0)");
            body.ShouldEndWith("readyz check passed\n");

            await server.DisposeAsync();
            serverStopped = true;
            (status, body) = await replica.GetAsync("/readyz", token);
            status.ShouldBe(HttpStatusCode.ServiceUnavailable);
            body.ShouldContain("[-]apiserver failed");
            (status, body) = await replica.GetAsync("/livez", token);
            status.ShouldBe(HttpStatusCode.OK);
            body.ShouldContain("[+]loop ok: running");
            (await replica.GetAsync("/healthz", token)).Status.ShouldBe(HttpStatusCode.OK);
        }
        finally
        {
            if (!serverStopped)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_standby_replica_is_ready_and_says_who_leads()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await PodMigrationCrd.InstallAsync(api.Client, api.Token);
        await using var leader = await Replica.StartAsync(api.Client, "controller-0", api.Token);
        await leader.EventuallyAsync("/readyz", (s, b) => s == HttpStatusCode.OK && b.Contains("leading", StringComparison.Ordinal), api.Token);
        await using var standby = await Replica.StartAsync(api.Client, "controller-1", api.Token);

        // Ready as soon as its informers synced, before its elector has read the lease ("no holder seen"): wait for the read.
        var (status, body) = await standby.EventuallyAsync("/readyz", (s, b) => s == HttpStatusCode.OK && b.Contains("held by", StringComparison.Ordinal), api.Token);
        body.ShouldContain("[+]leader ok: standby (lease default/podmigrate-controller held by controller-0)");
        (await standby.GetAsync("/metrics", api.Token)).Status.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task The_host_runs_the_controller_until_stopped_then_returns_and_hands_the_lease_over()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await PodMigrationCrd.InstallAsync(api.Client, api.Token);
        var agents = new StaticAgentDirectory(Options.Create(new AgentConnectionOptions { Insecure = true }), null, TimeProvider.System, NullLogger<StaticAgentDirectory>.Instance);
        var controller = PodMigrateController.Create(api.Client, agents,
            new ControllerOptions { LeaseNamespace = "default", Identity = "controller-0", LeaseRetryPeriod = TimeSpan.FromMilliseconds(100) }, NullLoggerFactory.Instance);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddPodMigrateController(_ => controller);
        using var host = builder.Build();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(api.Token);

        var running = host.RunControllerAsync(stop.Token);
        await TestPods.EventuallyAsync(() => controller.Elector!.IsLeader, api.Token);
        await stop.CancelAsync();

        // Returns (no failure to rethrow) once the loop has stopped; the lease is released on the way out.
        await running.WaitAsync(TimeSpan.FromSeconds(30), api.Token);
        var lease = await api.LeaseAsync();
        lease.Spec.HolderIdentity.ShouldBe("");
    }

    /// <summary>One controller replica in its own web host on a loopback port.</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly HttpClient _http;

        private Replica(WebApplication app, Uri address)
        {
            _app = app;
            _http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
        }

        public static async Task<Replica> StartAsync(IKubernetesApi api, string identity, CancellationToken cancellationToken)
        {
            var options = new ControllerOptions
            {
                LeaseNamespace = "default",
                Identity = identity,
                LeaseRetryPeriod = TimeSpan.FromMilliseconds(100),
                Workers = 1,
            };
            var agents = new StaticAgentDirectory(Options.Create(new AgentConnectionOptions { Insecure = true }), null, TimeProvider.System, NullLogger<StaticAgentDirectory>.Instance);
            var controller = PodMigrateController.Create(api, agents, options, NullLoggerFactory.Instance);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
            builder.Services.AddPodMigrateController(_ => controller);
            var app = builder.Build();
            app.MapPodMigrateControllerEndpoints();
            await app.StartAsync(cancellationToken);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
            return new Replica(app, new Uri(address));
        }

        public async Task<(HttpStatusCode Status, string Body)> GetAsync(string path, CancellationToken cancellationToken)
        {
            using var response = await _http.GetAsync(new Uri(path, UriKind.Relative), cancellationToken);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
        }

        public async Task<(HttpStatusCode Status, string Body)> EventuallyAsync(string path, Func<HttpStatusCode, string, bool> condition, CancellationToken cancellationToken)
        {
            var last = "";
            try
            {
                while (true)
                {
                    var (status, body) = await GetAsync(path, cancellationToken);
                    if (condition(status, body))
                    {
                        return (status, body);
                    }
                    last = $"{(int)status}\n{body}";
                    await Task.Delay(50, cancellationToken);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{path} never answered as expected; last answer: {last}");
            }
        }

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await _app.StopAsync(stop.Token);
            await _app.DisposeAsync();
        }
    }
}
