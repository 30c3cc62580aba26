using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Tls;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Triggers;

/// <summary>Where and with what certificate the eviction webhook is served.</summary>
public sealed class EvictionWebhookOptions
{
    /// <summary>The path the ValidatingWebhookConfiguration names (deploy/70-eviction-webhook.yaml).</summary>
    public const string Path = "/validate/pods-eviction";

    public const int DefaultPort = 8443;

    public IPAddress Address { get; set; } = IPAddress.Any;

    /// <summary>HTTPS port; 0 picks a free one (see <see cref="EvictionWebhookServer.Port"/>).</summary>
    public int Port { get; set; } = DefaultPort;

    /// <summary>tls.crt and tls.key of the webhook's server certificate (a mounted kubernetes.io/tls Secret); re-read when they change.</summary>
    public string TlsDirectory { get; set; } = "";

    /// <summary>This replica, for Events.</summary>
    public string Identity { get; set; } = "";
}

/// <summary>
/// The controller's validating admission webhook for CREATE of pods/eviction (what `kubectl drain`, the cluster
/// autoscaler and Karpenter send): reads the pod, its namespace's PodDisruptionBudgets and PodMigrations, decides
/// (<see cref="EvictionDecision"/>) and acts: an opted-in pod is answered 429 "being live-migrated" and a PodMigration
/// labelled <c>podmigrate.io/trigger: eviction</c> moves it to a node the precheck chooses (Ready, not cordoned, with a
/// healthy agent and the podmigrate runtime handler); everything else is allowed through untouched. Served by every
/// replica (the migration's name is derived from the pod's uid, so two replicas or two retries create one).
/// An answer it cannot give (the API unreachable) lets the eviction through only under failurePolicy Ignore: see
/// deploy/70-eviction-webhook.yaml for why the installed policy is Fail.
/// </summary>
internal sealed partial class EvictionWebhook(IKubernetesApi api, EventRecorder events, ILogger logger)
{

    /// <summary>Answers one AdmissionReview (v1): the response object with the request's uid.</summary>
    public async Task<JsonObject> ReviewAsync(JsonObject review, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(review);
        var request = review["request"] as JsonObject ?? throw PodMigrateException.InvalidArgument("the AdmissionReview has no request");
        var uid = request["uid"]?.GetValue<string>() ?? "";
        var verdict = await DecideAsync(request, cancellationToken);
        ControllerMetrics.EvictionWebhookDecision(verdict.Outcome);
        var response = new JsonObject { ["uid"] = uid };
        switch (verdict)
        {
            case EvictionVerdict.Allow allow:
                EvictionAllowed(logger, Describe(request), allow.Why);
                response["allowed"] = true;
                break;
            case EvictionVerdict.Deny deny:
                EvictionDenied(logger, Describe(request), deny.Message);
                response["allowed"] = false;
                response["status"] = TooManyRequests(deny.Message);
                break;
            case EvictionVerdict.Migrate migrate:
                response["allowed"] = false;
                response["status"] = TooManyRequests($"pod {Describe(request)} is {EvictionDecision.BeingMigrated} (podmigration {migrate.MigrationName})");
                break;
        }
        return new JsonObject { ["apiVersion"] = "admission.k8s.io/v1", ["kind"] = "AdmissionReview", ["response"] = response };
    }

    private async Task<EvictionVerdict> DecideAsync(JsonObject request, CancellationToken cancellationToken)
    {
        if (request["resource"]?["resource"]?.GetValue<string>() != "pods" || request["subResource"]?.GetValue<string>() != "eviction"
            || request["operation"]?.GetValue<string>() != "CREATE")
        {
            return new EvictionVerdict.Allow("not an eviction");
        }
        var ns = request["namespace"]?.GetValue<string>() ?? "default";
        var name = request["name"]?.GetValue<string>() ?? "";
        V1Pod? pod;
        try
        {
            pod = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedPodAsync(name, ns, cancellationToken: t), $"get pod {ns}/{name}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            pod = null;
        }
        if (pod is null || !TriggerLabels.OptedIn(pod.Metadata.Labels))
        {
            return EvictionDecision.Decide(pod, [], [], []);
        }
        var budgets = await KubeApiErrors.CallAsync(t => api.Kubernetes.PolicyV1.ListNamespacedPodDisruptionBudgetAsync(ns, cancellationToken: t),
            $"list poddisruptionbudgets in {ns}", cancellationToken);
        var migrations = await api.ListAsync(PodMigration.Resource, ns, null, cancellationToken);
        var budgetViews = budgets.Items.Select(b => EvictionDecision.ReadBudget(b, pod)).ToList();
        IReadOnlyList<V1Pod> pods = [];
        if (budgetViews.Any(b => b.Covers) && migrations.Items.Any(EvictionDecision.IsActive))
        {
            pods = [.. (await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ListNamespacedPodAsync(ns, cancellationToken: t), $"list pods in {ns}", cancellationToken)).Items];
        }
        var verdict = EvictionDecision.Decide(pod, budgetViews, migrations.Items, pods);
        if (verdict is EvictionVerdict.Migrate migrate && request["dryRun"]?.GetValue<bool>() != true)
        {
            await StartMigrationAsync(pod, migrate.MigrationName, cancellationToken);
        }
        return verdict;
    }

    private async Task StartMigrationAsync(V1Pod pod, string migrationName, CancellationToken cancellationToken)
    {
        var migration = new PodMigration
        {
            Metadata = new V1ObjectMeta
            {
                Name = migrationName,
                NamespaceProperty = pod.Metadata.NamespaceProperty,
                Labels = new Dictionary<string, string>(StringComparer.Ordinal) { [TriggerLabels.Trigger] = TriggerLabels.Eviction },
            },
            // No target: the precheck chooses a Ready, uncordoned node with a healthy, compatible agent and the runtime handler.
            Spec = new PodMigrationSpec { PodName = pod.Metadata.Name!, Mode = MigrationMode.Migrate },
        };
        try
        {
            await api.CreateAsync(PodMigration.Resource, pod.Metadata.NamespaceProperty, migration, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            return; // another replica, or a retry, was first
        }
        MigrationStarted(logger, pod.Key(), migrationName);
        await events.NormalAsync(KubeObjects.Reference(KubeResources.V1Pods, pod.Metadata), "EvictionMigrating",
            $"eviction answered by live migration: podmigration {migrationName} moves the pod off node {pod.Spec.NodeName}", cancellationToken);
    }

    private static JsonObject TooManyRequests(string message) => new()
    {
        ["status"] = "Failure",
        ["message"] = message,
        ["reason"] = "TooManyRequests",
        ["code"] = 429,
    };

    private static string Describe(JsonObject request) => $"{request["namespace"]?.GetValue<string>()}/{request["name"]?.GetValue<string>()}";

    [LoggerMessage(3001, LogLevel.Information, "Eviction of pod {Pod} answered by live migration {Migration}")]
    private static partial void MigrationStarted(ILogger logger, string pod, string migration);

    [LoggerMessage(3002, LogLevel.Information, "Eviction of pod {Pod} refused: {Message}")]
    private static partial void EvictionDenied(ILogger logger, string pod, string message);

    [LoggerMessage(3003, LogLevel.Debug, "Eviction of pod {Pod} let through: {Why}")]
    private static partial void EvictionAllowed(ILogger logger, string pod, string why);

    [LoggerMessage(3004, LogLevel.Error, "Eviction review failed")]
    internal static partial void ReviewFailed(ILogger logger, Exception exception);
}

/// <summary>
/// The HTTPS endpoint of <see cref="EvictionWebhook"/> on Kestrel (HTTP/1.1 and HTTP/2, as the API server may use either),
/// with the certificate of <see cref="EvictionWebhookOptions.TlsDirectory"/>, re-read when the files change (cert-manager
/// renewals need no restart).
/// </summary>
public sealed class EvictionWebhookServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TlsCertificateFiles _certificates;
    private readonly EventRecorder _events;

    private EvictionWebhookServer(WebApplication app, TlsCertificateFiles certificates, EventRecorder events, int port)
    {
        _app = app;
        _certificates = certificates;
        _events = events;
        Port = port;
    }

    public int Port { get; }

    public static async Task<EvictionWebhookServer> StartAsync(IKubernetesApi api, EvictionWebhookOptions options, ILoggerFactory loggers, TimeProvider? time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        if (string.IsNullOrEmpty(options.TlsDirectory))
        {
            throw PodMigrateException.InvalidArgument("the eviction webhook needs a TLS directory (tls.crt, tls.key, ca.crt): the API server calls it over HTTPS only");
        }
        time ??= TimeProvider.System;
        var logger = loggers.CreateLogger<EvictionWebhook>();
        var certificates = TlsCertificateFiles.ForDirectory(options.TlsDirectory, time, logger);
        _ = certificates.Current; // fails now on missing or broken files, not at the first handshake
        var events = new EventRecorder(api, new EventRecorderOptions { Component = "podmigrate-eviction-webhook", Host = options.Identity }, time,
            loggers.CreateLogger<EventRecorder>());
        var webhook = new EvictionWebhook(api, events, logger);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.Address, options.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(new HttpsConnectionAdapterOptions { ServerCertificateSelector = (_, _) => certificates.Current.Certificate });
            });
        });
        var app = builder.Build();
        app.MapPost(EvictionWebhookOptions.Path, async (HttpContext context) =>
        {
            JsonObject review;
            try
            {
                review = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted) as JsonObject
                    ?? throw PodMigrateException.InvalidArgument("the body is not an AdmissionReview");
            }
            catch (JsonException e)
            {
                return Results.BadRequest(e.Message);
            }
            try
            {
                var answer = await webhook.ReviewAsync(review, context.RequestAborted);
                return Results.Text(answer.ToJsonString(), "application/json");
            }
            catch (Exception e) when (e is PodMigrateException or HttpRequestException)
            {
                // The API server applies the webhook's failurePolicy to a failed call.
                EvictionWebhook.ReviewFailed(logger, e);
                return Results.StatusCode(500);
            }
        });
        app.MapGet("/healthz", () => Results.Text("ok"));
        await app.StartAsync(cancellationToken);
        var address = app.Urls.First();
        return new EvictionWebhookServer(app, certificates, events, new Uri(address.Replace("[::]", "localhost", StringComparison.Ordinal).Replace("0.0.0.0", "localhost", StringComparison.Ordinal)).Port);
    }

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stopping.Token);
        await _app.DisposeAsync();
        _certificates.Dispose();
        _events.Dispose();
    }
}
