using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Tls;
using PodMigrate.Kube.ApiServer;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// The in-process API server's policy/v1 PodDisruptionBudgets (status as the disruption controller keeps it), the
/// pods/eviction subresource with its budget rules, and the validating admission webhooks it calls for evictions
/// (AdmissionReview v1 over HTTPS with caBundle, rules, failurePolicy, timeoutSeconds), over real HTTP.
/// </summary>
[Trait("Category", "Integration")]
public sealed class EvictionServerTests
{
    [Fact]
    public async Task Discovery_offers_pods_eviction_as_kubectl_drain_looks_for_it_and_serves_policy_v1()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);

        var core = await GetAsync(http, "/api/v1", api.Token);
        var policy = await GetAsync(http, "/apis/policy/v1", api.Token);

        var eviction = core["resources"]!.AsArray().OfType<JsonObject>().Single(r => r["name"]!.GetValue<string>() == "pods/eviction");
        eviction["kind"]!.GetValue<string>().ShouldBe("Eviction");
        eviction["group"]!.GetValue<string>().ShouldBe("policy");
        eviction["version"]!.GetValue<string>().ShouldBe("v1");
        eviction["verbs"]!.AsArray().Select(v => v!.GetValue<string>()).ShouldBe(["create"]);
        policy["resources"]!.AsArray().Select(r => r!["name"]!.GetValue<string>()).ShouldBe(["poddisruptionbudgets", "poddisruptionbudgets/status"]);
        (await GetAsync(http, "/apis/admissionregistration.k8s.io/v1", api.Token))["resources"]!.AsArray()
            .Select(r => r!["name"]!.GetValue<string>()).ShouldContain("validatingwebhookconfigurations");
    }

    [Fact]
    public async Task A_budget_s_status_follows_its_pods_as_the_disruption_controller_keeps_it()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        foreach (var name in new[] { "web-1", "web-2", "web-3" })
        {
            await CreatePodAsync(http, name, "web", ready: name != "web-3", api.Token);
        }

        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("web", """{"minAvailable":2}"""), api.Token);
        var status = await BudgetStatusAsync(http, "web", api.Token);

        status["expectedPods"]!.GetValue<long>().ShouldBe(3);
        status["currentHealthy"]!.GetValue<long>().ShouldBe(2);
        status["desiredHealthy"]!.GetValue<long>().ShouldBe(2);
        status["disruptionsAllowed"]!.GetValue<long>().ShouldBe(0);
        status["observedGeneration"]!.GetValue<long>().ShouldBe(1);
        Condition(status)["status"]!.GetValue<string>().ShouldBe("False");
        Condition(status)["reason"]!.GetValue<string>().ShouldBe("InsufficientPods");

        await SetReadyAsync(http, "web-3", api.Token);
        status = await BudgetStatusAsync(http, "web", api.Token);
        status["currentHealthy"]!.GetValue<long>().ShouldBe(3);
        status["disruptionsAllowed"]!.GetValue<long>().ShouldBe(1);
        Condition(status)["reason"]!.GetValue<string>().ShouldBe("SufficientPods");

        // maxUnavailable as a percentage of the expected pods, rounded up: 3 - ceil(1.5) = 1 desired, 2 may go.
        await PatchAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web", """{"spec":{"minAvailable":null,"maxUnavailable":"50%"}}""", api.Token);
        status = await BudgetStatusAsync(http, "web", api.Token);
        status["observedGeneration"]!.GetValue<long>().ShouldBe(2, "the spec changed");
        status["desiredHealthy"]!.GetValue<long>().ShouldBe(1);
        status["disruptionsAllowed"]!.GetValue<long>().ShouldBe(2);

        using var table = new HttpRequestMessage(HttpMethod.Get, "/apis/policy/v1/namespaces/default/poddisruptionbudgets");
        table.Headers.Accept.ParseAdd("application/json;as=Table;v=v1;g=meta.k8s.io");
        using var response = await http.SendAsync(table, api.Token);
        var rows = JsonNode.Parse(await response.Content.ReadAsStringAsync(api.Token))!["rows"]!.AsArray();
        rows.Single()!["cells"]!.AsArray().Select(c => c?.ToString()).Take(4).ShouldBe(["web", "N/A", "50%", "2"]);
    }

    [Fact]
    public async Task An_eviction_spends_the_budget_and_deletes_gracefully_then_the_next_gets_429_with_the_budget_s_cause()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreatePodAsync(http, "web-1", "web", ready: true, api.Token);
        await CreatePodAsync(http, "web-2", "web", ready: true, api.Token);
        await CreatePodAsync(http, "loner", "other", ready: true, api.Token);
        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("web", """{"minAvailable":1}"""), api.Token);

        var (first, _) = await EvictAsync(http, "web-1", api.Token);
        var budget = await BudgetStatusAsync(http, "web", api.Token);
        var evicted = await GetAsync(http, "/api/v1/namespaces/default/pods/web-1", api.Token);
        var (second, refusal) = await EvictAsync(http, "web-2", api.Token);
        var (plain, _) = await EvictAsync(http, "loner", api.Token);

        first.ShouldBe(HttpStatusCode.Created);
        budget["disruptionsAllowed"]!.GetValue<long>().ShouldBe(0);
        budget["disruptedPods"].ShouldBeNull("the eviction records the pod, and the disruption controller drops the record once the pod is being deleted");
        evicted["metadata"]!["deletionTimestamp"].ShouldNotBeNull("a bound pod is deleted gracefully: its kubelet finishes it");
        evicted["status"]!["conditions"]!.AsArray().OfType<JsonObject>().ShouldContain(c => c["type"]!.GetValue<string>() == "DisruptionTarget"
            && c["reason"]!.GetValue<string>() == "EvictionByEvictionAPI");
        second.ShouldBe(HttpStatusCode.TooManyRequests);
        refusal["reason"]!.GetValue<string>().ShouldBe("TooManyRequests");
        refusal["message"]!.GetValue<string>().ShouldBe("Cannot evict pod as it would violate the pod's disruption budget.");
        var cause = refusal["details"]!["causes"]!.AsArray().Single()!;
        cause["reason"]!.GetValue<string>().ShouldBe("DisruptionBudget");
        cause["message"]!.GetValue<string>().ShouldBe("The disruption budget web needs 1 healthy pods and has 1 currently");
        (await GetAsync(http, "/api/v1/namespaces/default/pods/web-2", api.Token))["metadata"]!["deletionTimestamp"].ShouldBeNull();
        plain.ShouldBe(HttpStatusCode.Created, "no budget covers it");
        (await EvictAsync(http, "gone", api.Token)).Code.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_pod_under_two_budgets_cannot_be_evicted()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreatePodAsync(http, "web-1", "web", ready: true, api.Token);
        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("web", """{"maxUnavailable":1}""", "a"), api.Token);
        await PostAsync(http, "/apis/policy/v1/namespaces/default/poddisruptionbudgets", Budget("web", """{"maxUnavailable":1}""", "b"), api.Token);

        var (code, status) = await EvictAsync(http, "web-1", api.Token);

        code.ShouldBe(HttpStatusCode.InternalServerError);
        status["message"]!.GetValue<string>().ShouldContain("more than one PodDisruptionBudget");
    }

    [Fact]
    public async Task A_matching_webhook_is_called_with_an_AdmissionReview_and_its_429_denial_keeps_the_pod()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await using var webhook = await ScriptedWebhook.StartAsync(_ => Deny(429, "TooManyRequests", "being live-migrated"), api.Token);
        using var http = Http(api);
        await CreatePodAsync(http, "counter", "counter", ready: true, api.Token);
        await InstallAsync(http, webhook, "Fail", resources: "pods/eviction", api.Token);

        var (code, status) = await EvictAsync(http, "counter", api.Token);

        code.ShouldBe(HttpStatusCode.TooManyRequests);
        status["message"]!.GetValue<string>().ShouldBe("admission webhook \"eviction.test.io\" denied the request: being live-migrated");
        status["reason"]!.GetValue<string>().ShouldBe("TooManyRequests");
        (await GetAsync(http, "/api/v1/namespaces/default/pods/counter", api.Token))["metadata"]!["deletionTimestamp"].ShouldBeNull();
        var review = webhook.Reviews.ShouldHaveSingleItem();
        review["apiVersion"]!.GetValue<string>().ShouldBe("admission.k8s.io/v1");
        var request = review["request"]!;
        request["operation"]!.GetValue<string>().ShouldBe("CREATE");
        request["kind"]!.ToJsonString().ShouldBe("""{"group":"policy","version":"v1","kind":"Eviction"}""");
        request["resource"]!.ToJsonString().ShouldBe("""{"group":"","version":"v1","resource":"pods"}""");
        request["subResource"]!.GetValue<string>().ShouldBe("eviction");
        request["name"]!.GetValue<string>().ShouldBe("counter");
        request["namespace"]!.GetValue<string>().ShouldBe("default");
        request["object"]!["kind"]!.GetValue<string>().ShouldBe("Eviction");
        request["userInfo"]!["username"]!.GetValue<string>().ShouldNotBeNullOrEmpty();
    }

    [Fact]
    public async Task An_allowing_webhook_lets_the_eviction_through_and_a_rule_for_other_resources_is_not_called()
    {
        await using var api = await ApiServerFixture.StartAsync();
        await using var allowing = await ScriptedWebhook.StartAsync(_ => Allow(), api.Token);
        await using var other = await ScriptedWebhook.StartAsync(_ => Deny(403, "Forbidden", "never"), api.Token);
        using var http = Http(api);
        await CreatePodAsync(http, "web", "web", ready: true, api.Token);
        await InstallAsync(http, allowing, "Fail", resources: "pods/*", api.Token, name: "allowing");
        await InstallAsync(http, other, "Fail", resources: "pods", api.Token, name: "other");

        var (code, _) = await EvictAsync(http, "web", api.Token);

        code.ShouldBe(HttpStatusCode.Created);
        allowing.Reviews.Count.ShouldBe(1, "pods/* covers the eviction subresource");
        other.Reviews.ShouldBeEmpty("\"pods\" names the resource without subresources");
    }

    [Fact]
    public async Task A_webhook_that_cannot_be_reached_refuses_the_eviction_under_Fail_and_is_skipped_under_Ignore()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var http = Http(api);
        await CreatePodAsync(http, "a", "a", ready: true, api.Token);
        await CreatePodAsync(http, "b", "b", ready: true, api.Token);
        var down = new ScriptedWebhook.Endpoint($"https://127.0.0.1:{FreePort()}/validate", ScriptedWebhook.TestCa.Value.CaPem);

        await InstallAsync(http, down, "Fail", "pods/eviction", api.Token, name: "strict");
        var (failed, status) = await EvictAsync(http, "a", api.Token);
        await DeleteAsync(http, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/strict", api.Token);
        await InstallAsync(http, down, "Ignore", "pods/eviction", api.Token, name: "lenient");
        var (ignored, _) = await EvictAsync(http, "b", api.Token);

        failed.ShouldBe(HttpStatusCode.InternalServerError);
        status["message"]!.GetValue<string>().ShouldStartWith("Internal error occurred: failed calling webhook \"eviction.test.io\": failed to call webhook: Post");
        ignored.ShouldBe(HttpStatusCode.Created);
    }

    [Fact]
    public async Task A_webhook_with_a_certificate_outside_its_caBundle_or_slower_than_its_timeout_is_a_failed_call()
    {
        await using var api = await ApiServerFixture.StartAsync();
        using var gate = new SemaphoreSlim(0);
        await using var slow = await ScriptedWebhook.StartAsync(async _ =>
        {
            await gate.WaitAsync(TimeSpan.FromSeconds(20));
            return Allow();
        }, api.Token);
        await using var honest = await ScriptedWebhook.StartAsync(_ => Allow(), api.Token);
        using var http = Http(api);
        await CreatePodAsync(http, "a", "a", ready: true, api.Token);
        using var strangerCa = CertificateAuthority.Create("Stranger CA", TimeSpan.FromDays(1));

        await InstallAsync(http, honest.At with { CaPem = strangerCa.CertificatePem }, "Fail", "pods/eviction", api.Token, name: "untrusted");
        var (untrusted, _) = await EvictAsync(http, "a", api.Token);
        await DeleteAsync(http, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/untrusted", api.Token);
        await InstallAsync(http, slow, "Fail", "pods/eviction", api.Token, name: "slow", timeoutSeconds: 1);
        var started = DateTimeOffset.UtcNow;
        var (timedOut, status) = await EvictAsync(http, "a", api.Token);
        var waited = DateTimeOffset.UtcNow - started;
        gate.Release();

        untrusted.ShouldBe(HttpStatusCode.InternalServerError);
        honest.Reviews.ShouldBeEmpty("the TLS handshake failed before any request");
        timedOut.ShouldBe(HttpStatusCode.InternalServerError);
        status["message"]!.GetValue<string>().ShouldContain("context deadline exceeded");
        waited.ShouldBeLessThan(TimeSpan.FromSeconds(10));
        (await GetAsync(http, "/api/v1/namespaces/default/pods/a", api.Token))["metadata"]!["deletionTimestamp"].ShouldBeNull();
    }

    internal static JsonObject Allow() => new() { ["allowed"] = true };

    internal static JsonObject Deny(int code, string reason, string message) => new()
    {
        ["allowed"] = false,
        ["status"] = new JsonObject { ["code"] = code, ["reason"] = reason, ["message"] = message },
    };

    internal static HttpClient Http(ApiServerFixture api) => new() { BaseAddress = api.Server.BaseAddress };

    internal static async Task CreatePodAsync(HttpClient http, string name, string app, bool ready, CancellationToken cancellationToken, IDictionary<string, string>? labels = null)
    {
        var labelObject = new JsonObject { ["app"] = app };
        foreach (var (key, value) in labels ?? new Dictionary<string, string>())
        {
            labelObject[key] = value;
        }
        await PostAsync(http, "/api/v1/namespaces/default/pods", new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Pod",
            ["metadata"] = new JsonObject { ["name"] = name, ["labels"] = labelObject },
            ["spec"] = new JsonObject { ["nodeName"] = "node-a", ["containers"] = new JsonArray(new JsonObject { ["name"] = "main", ["image"] = "busybox" }) },
        }, cancellationToken);
        var status = new JsonObject { ["phase"] = "Running" };
        if (ready)
        {
            status["conditions"] = new JsonArray(new JsonObject { ["type"] = "Ready", ["status"] = "True" });
        }
        await PatchAsync(http, $"/api/v1/namespaces/default/pods/{name}/status", new JsonObject { ["status"] = status }.ToJsonString(), cancellationToken);
    }

    private static Task SetReadyAsync(HttpClient http, string name, CancellationToken cancellationToken)
        => PatchAsync(http, $"/api/v1/namespaces/default/pods/{name}/status", """{"status":{"conditions":[{"type":"Ready","status":"True"}]}}""", cancellationToken);

    internal static JsonObject Budget(string app, string spec, string? name = null)
    {
        var specObject = JsonNode.Parse(spec)!.AsObject();
        specObject["selector"] = new JsonObject { ["matchLabels"] = new JsonObject { ["app"] = app } };
        return new JsonObject
        {
            ["apiVersion"] = "policy/v1",
            ["kind"] = "PodDisruptionBudget",
            ["metadata"] = new JsonObject { ["name"] = name ?? app },
            ["spec"] = specObject,
        };
    }

    internal static async Task<JsonObject> BudgetStatusAsync(HttpClient http, string name, CancellationToken cancellationToken)
        => (JsonObject)(await GetAsync(http, $"/apis/policy/v1/namespaces/default/poddisruptionbudgets/{name}", cancellationToken))["status"]!;

    private static JsonObject Condition(JsonObject status) => (JsonObject)status["conditions"]!.AsArray().Single()!;

    internal static async Task<(HttpStatusCode Code, JsonObject Status)> EvictAsync(HttpClient http, string pod, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["apiVersion"] = "policy/v1", ["kind"] = "Eviction", ["metadata"] = new JsonObject { ["name"] = pod, ["namespace"] = "default" } };
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        using var response = await http.PostAsync($"/api/v1/namespaces/default/pods/{pod}/eviction", content, cancellationToken);
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))!.AsObject());
    }

    internal static async Task<JsonObject> GetAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(path, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        response.IsSuccessStatusCode.ShouldBeTrue($"GET {path}: {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    internal static async Task PostAsync(HttpClient http, string path, JsonObject body, CancellationToken cancellationToken)
    {
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        using var response = await http.PostAsync(path, content, cancellationToken);
        response.IsSuccessStatusCode.ShouldBeTrue($"POST {path}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
    }

    private static async Task PatchAsync(HttpClient http, string path, string patch, CancellationToken cancellationToken)
    {
        using var content = new StringContent(patch, Encoding.UTF8, new MediaTypeHeaderValue("application/merge-patch+json"));
        using var response = await http.PatchAsync(path, content, cancellationToken);
        response.IsSuccessStatusCode.ShouldBeTrue($"PATCH {path}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
    }

    private static async Task DeleteAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        using var response = await http.DeleteAsync(path, cancellationToken);
        response.IsSuccessStatusCode.ShouldBeTrue($"DELETE {path}");
    }

    internal static Task InstallAsync(HttpClient http, ScriptedWebhook webhook, string failurePolicy, string resources, CancellationToken cancellationToken, string name = "eviction", int? timeoutSeconds = null)
        => InstallAsync(http, webhook.At, failurePolicy, resources, cancellationToken, name, timeoutSeconds);

    internal static Task InstallAsync(HttpClient http, ScriptedWebhook.Endpoint at, string failurePolicy, string resources, CancellationToken cancellationToken,
        string name = "eviction", int? timeoutSeconds = null, string webhookName = "eviction.test.io")
    {
        var webhook = new JsonObject
        {
            ["name"] = webhookName,
            ["admissionReviewVersions"] = new JsonArray("v1"),
            ["clientConfig"] = new JsonObject { ["url"] = at.Url, ["caBundle"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(at.CaPem)) },
            ["rules"] = new JsonArray(new JsonObject
            {
                ["operations"] = new JsonArray("CREATE"),
                ["apiGroups"] = new JsonArray(""),
                ["apiVersions"] = new JsonArray("v1"),
                ["resources"] = new JsonArray(resources),
            }),
            ["failurePolicy"] = failurePolicy,
            ["sideEffects"] = "None",
        };
        if (timeoutSeconds is { } seconds)
        {
            webhook["timeoutSeconds"] = seconds;
        }
        return PostAsync(http, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", new JsonObject
        {
            ["apiVersion"] = "admissionregistration.k8s.io/v1",
            ["kind"] = "ValidatingWebhookConfiguration",
            ["metadata"] = new JsonObject { ["name"] = name },
            ["webhooks"] = new JsonArray(webhook),
        }, cancellationToken);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>An HTTPS admission webhook whose answers the test scripts, with a certificate from a test CA; it records every review.</summary>
internal sealed class ScriptedWebhook : IAsyncDisposable
{
    public sealed record Endpoint(string Url, string CaPem);

    public sealed record Ca(string CaPem, X509Certificate2 Server);

    /// <summary>One CA and one server certificate (127.0.0.1, localhost) for every scripted webhook of the run.</summary>
    public static readonly Lazy<Ca> TestCa = new(() =>
    {
        using var ca = CertificateAuthority.Create("Webhook test CA", TimeSpan.FromDays(1));
        var issued = ca.IssueTlsServer("webhook", ["localhost"], [IPAddress.Loopback], TimeSpan.FromDays(1));
        return new Ca(ca.CertificatePem, X509Certificate2.CreateFromPem(issued.CertificatePem, issued.KeyPem));
    });

    private readonly WebApplication _app;

    private ScriptedWebhook(WebApplication app, Endpoint at)
    {
        _app = app;
        At = at;
    }

    public Endpoint At { get; }

    public List<JsonObject> Reviews { get; } = [];

    public static Task<ScriptedWebhook> StartAsync(Func<JsonObject, JsonObject> answer, CancellationToken cancellationToken)
        => StartAsync(request => Task.FromResult(answer(request)), cancellationToken);

    public static async Task<ScriptedWebhook> StartAsync(Func<JsonObject, Task<JsonObject>> answer, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            l.Protocols = HttpProtocols.Http1AndHttp2;
            l.UseHttps(TestCa.Value.Server);
        }));
        var app = builder.Build();
        ScriptedWebhook? self = null;
        app.MapPost("/validate", async (HttpContext context) =>
        {
            var review = (await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted))!.AsObject();
            lock (self!.Reviews)
            {
                self.Reviews.Add(review);
            }
            var response = await answer(review);
            response["uid"] = review["request"]!["uid"]!.GetValue<string>();
            return Results.Text(new JsonObject { ["apiVersion"] = "admission.k8s.io/v1", ["kind"] = "AdmissionReview", ["response"] = response }.ToJsonString(), "application/json");
        });
        await app.StartAsync(cancellationToken);
        var port = new Uri(app.Urls.First()).Port;
        self = new ScriptedWebhook(app, new Endpoint($"https://127.0.0.1:{port}/validate", TestCa.Value.CaPem));
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
