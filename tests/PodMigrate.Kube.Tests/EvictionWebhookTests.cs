using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Triggers;
using PodMigrate.Core.Tls;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;
using static PodMigrate.Kube.Tests.EvictionServerTests;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// The controller's eviction webhook (its real HTTPS server) called by the in-process API server as kube-apiserver
/// calls it: opted-in pods are answered 429 "being live-migrated" with one PodMigration labelled trigger=eviction,
/// other pods go through, a budget that allows no disruption gets the server's own 429 and no migration, and a failed
/// migration leaves the pod where it is. (The migration itself runs on the real stack: EndToEnd/DrainEndToEndTests.)
/// </summary>
[Trait("Category", "Integration")]
public sealed class EvictionWebhookTests
{
    private static readonly Dictionary<string, string> OptedIn = new() { [TriggerLabels.LiveMigrate] = "true" };

    [Fact]
    public async Task An_opted_in_pod_is_migrated_instead_of_evicted_and_later_attempts_get_429_while_it_runs()
    {
        await using var world = await WebhookWorld.StartAsync();
        using var http = Http(world.Api);
        await CreatePodAsync(http, "counter", "counter", ready: true, world.Token, OptedIn);

        var (first, status) = await EvictAsync(http, "counter", world.Token);
        var (second, again) = await EvictAsync(http, "counter", world.Token);
        var migrations = await world.Api.Client.ListAsync(PodMigration.Resource, "default", null, world.Token);

        first.ShouldBe(HttpStatusCode.TooManyRequests);
        status["message"]!.GetValue<string>().ShouldStartWith("admission webhook \"eviction.podmigrate.io\" denied the request: pod default/counter is being live-migrated");
        second.ShouldBe(HttpStatusCode.TooManyRequests);
        again["message"]!.GetValue<string>().ShouldContain("being live-migrated");
        var migration = migrations.Items.ShouldHaveSingleItem("a retry must not start a second migration");
        migration.Spec.PodName.ShouldBe("counter");
        migration.Spec.Mode.ShouldBe(MigrationMode.Migrate);
        migration.Spec.TargetNode.ShouldBeNull("the precheck chooses a Ready, uncordoned node with the runtime handler");
        migration.Metadata.Labels![TriggerLabels.Trigger].ShouldBe(TriggerLabels.Eviction);
        (await GetAsync(http, "/api/v1/namespaces/default/pods/counter", world.Token))["metadata"]!["deletionTimestamp"].ShouldBeNull();
    }

    [Fact]
    public async Task Other_pods_are_evicted_untouched_and_a_budget_allowing_no_disruption_gets_the_server_s_429_and_no_migration()
    {
        await using var world = await WebhookWorld.StartAsync();
        using var http = Http(world.Api);
        await CreatePodAsync(http, "plain", "plain", ready: true, world.Token);
        await CreatePodAsync(http, "guarded", "guarded", ready: true, world.Token, OptedIn);
        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("guarded", """{"minAvailable":1}"""), world.Token);

        var (plain, _) = await EvictAsync(http, "plain", world.Token);
        var (guarded, status) = await EvictAsync(http, "guarded", world.Token);

        plain.ShouldBe(HttpStatusCode.Created);
        guarded.ShouldBe(HttpStatusCode.TooManyRequests);
        status["message"]!.GetValue<string>().ShouldBe("Cannot evict pod as it would violate the pod's disruption budget.", "the budget's own refusal, after admission");
        (await world.Api.Client.ListAsync(PodMigration.Resource, "default", null, world.Token)).Items.ShouldBeEmpty();
    }

    [Fact]
    public async Task A_running_migration_counts_against_the_budget_of_the_other_pods_it_covers()
    {
        await using var world = await WebhookWorld.StartAsync();
        using var http = Http(world.Api);
        foreach (var name in new[] { "db-0", "db-1", "db-2" })
        {
            await CreatePodAsync(http, name, "db", ready: true, world.Token, OptedIn);
        }
        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("db", """{"maxUnavailable":1}"""), world.Token);

        var (first, _) = await EvictAsync(http, "db-0", world.Token);
        var (second, status) = await EvictAsync(http, "db-1", world.Token);

        first.ShouldBe(HttpStatusCode.TooManyRequests);
        second.ShouldBe(HttpStatusCode.TooManyRequests);
        status["message"]!.GetValue<string>().ShouldContain("1 live migration(s) of its pods are running");
        (await world.Api.Client.ListAsync(PodMigration.Resource, "default", null, world.Token)).Items.Select(m => m.Spec.PodName).ShouldBe(["db-0"]);
        (await BudgetStatusAsync(http, "db", world.Token))["disruptionsAllowed"]!.GetValue<long>().ShouldBe(1, "nothing was evicted");
    }

    [Fact]
    public async Task A_migration_that_rolled_back_leaves_the_pod_running_and_refuses_the_eviction_with_the_reason()
    {
        await using var world = await WebhookWorld.StartAsync();
        using var http = Http(world.Api);
        await CreatePodAsync(http, "counter", "counter", ready: true, world.Token, OptedIn);
        await EvictAsync(http, "counter", world.Token);
        var migration = (await world.Api.Client.ListAsync(PodMigration.Resource, "default", null, world.Token)).Items.Single();
        await world.Api.Client.PatchAsync(PodMigration.Resource, "default", migration.Name, PatchType.MergePatch,
            """{"status":{"phase":"RolledBack","message":"the clone did not become Ready"}}""", status: true, world.Token);

        var (code, status) = await EvictAsync(http, "counter", world.Token);

        code.ShouldBe(HttpStatusCode.TooManyRequests);
        status["message"]!.GetValue<string>().ShouldContain("ended RolledBack: the clone did not become Ready; it keeps running on node node-a");
        (await world.Api.Client.ListAsync(PodMigration.Resource, "default", null, world.Token)).Items.Count.ShouldBe(1, "no second attempt on a drain's retry");
        (await GetAsync(http, "/api/v1/namespaces/default/pods/counter", world.Token))["metadata"]!["deletionTimestamp"].ShouldBeNull();
    }

    /// <summary>The API server with the PodMigration CRD, the controller's webhook on HTTPS, and its configuration installed.</summary>
    private sealed class WebhookWorld : IAsyncDisposable
    {
        private readonly string _directory;

        private WebhookWorld(ApiServerFixture api, EvictionWebhookServer webhook, string directory)
        {
            Api = api;
            Webhook = webhook;
            _directory = directory;
        }

        public ApiServerFixture Api { get; }

        public EvictionWebhookServer Webhook { get; }

        public CancellationToken Token => Api.Token;

        public static async Task<WebhookWorld> StartAsync()
        {
            var api = await ApiServerFixture.StartAsync();
            var directory = Directory.CreateTempSubdirectory("podmigrate-webhook-").FullName;
            using var ca = CertificateAuthority.Create("Webhook test CA", TimeSpan.FromDays(1));
            await ca.IssueTlsServer("podmigrate-webhook", ["localhost"], [IPAddress.Loopback], TimeSpan.FromDays(1)).WriteDirectoryAsync(directory, ca.CertificatePem, api.Token);
            using var http = Http(api);
            var crd = KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(Path.Combine(DeployDirectory.Path, "10-podmigration-crd.yaml"), api.Token), "deploy/10-podmigration-crd.yaml").Single();
            await PostAsync(http, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", JsonNode.Parse(crd)!.AsObject(), api.Token);
            var webhook = await EvictionWebhookServer.StartAsync(api.Client, new EvictionWebhookOptions { Address = IPAddress.Loopback, Port = 0, TlsDirectory = directory, Identity = "test" },
                NullLoggerFactory.Instance, null, api.Token);
            var endpoint = new ScriptedWebhook.Endpoint($"https://127.0.0.1:{webhook.Port}{EvictionWebhookOptions.Path}", ca.CertificatePem);
            await InstallAsync(http, endpoint with { }, "Fail", "pods/eviction", api.Token, name: "podmigrate-eviction", webhookName: "eviction.podmigrate.io");
            return new WebhookWorld(api, webhook, directory);
        }

        public async ValueTask DisposeAsync()
        {
            await Webhook.DisposeAsync();
            await Api.DisposeAsync();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
