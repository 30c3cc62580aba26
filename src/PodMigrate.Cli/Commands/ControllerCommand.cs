using System.CommandLine;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Hosting;
using PodMigrate.Controller.Triggers;
using PodMigrate.Controller.Triggers.OomGuard;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate controller`: reconciles PodMigrations and clone-of pods against an API server (in a Deployment: the
/// service account and POD_NAMESPACE/POD_NAME from the downward API), reaching the agents through their DaemonSet's pods
/// over mutual TLS. Until SIGTERM; with leader election only the replica holding the Lease works.
/// </summary>
internal static class ControllerCommand
{
    public static Command Create()
    {
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "kubeconfig of the API server (default: the service account in a pod, $KUBECONFIG, ~/.kube/config)" };
        var ns = new Option<string>("--namespace")
        {
            Description = "The controller's own namespace: its Lease and the agents' client certificate Secret (default $POD_NAMESPACE or podmigrate-system)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("POD_NAMESPACE") is { Length: > 0 } podNamespace ? podNamespace : "podmigrate-system",
        };
        var watchNamespace = new Option<string?>("--watch-namespace") { Description = "Only PodMigrations and pods of this namespace (default: all)" };
        var leaderElect = new Option<bool>("--leader-elect") { Description = "Work only while holding the Lease (run several replicas)", DefaultValueFactory = _ => true };
        var identity = new Option<string>("--identity")
        {
            Description = "This replica's name in the Lease (default $POD_NAME, else host-pid)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("POD_NAME") is { Length: > 0 } pod ? pod : $"{Environment.MachineName}-{Environment.ProcessId}",
        };
        var workers = new Option<int>("--workers") { Description = "Migrations reconciled at once", DefaultValueFactory = _ => 4 };
        var agentNamespace = new Option<string>("--agent-namespace") { Description = "Namespace of the agent DaemonSet's pods", DefaultValueFactory = _ => AgentConnectionOptions.DefaultNamespace };
        var agentTlsSecret = new Option<string>("--agent-tls-secret") { Description = "Secret (kubernetes.io/tls + ca.crt) with the client certificate for the agents", DefaultValueFactory = _ => AgentConnectionOptions.DefaultTlsSecretName };
        var agentTlsServerName = new Option<string?>("--agent-tls-server-name") { Description = "Name the agents' server certificate must carry (default: each agent's node name)" };
        var agentTlsDir = new Option<string?>("--agent-tls-dir") { Description = "Directory with tls.crt, tls.key and ca.crt instead of the Secret" };
        var agentInsecure = new Option<bool>("--agent-insecure") { Description = "Cleartext gRPC to the agents (local clusters only)" };
        var agentStatic = new Option<string[]>("--agent") { Description = "NODE=ADDRESS of an agent instead of finding them through their pods (repeatable)", AllowMultipleArgumentsPerToken = false };
        var metricsPort = new Option<int>("--metrics-port") { Description = "HTTP port for /metrics, /readyz, /livez and /healthz (0: none)" };
        var oomGuard = new Option<bool>("--oom-guard") { Description = "Run the OOM guard: move an opted-in pod (podmigrate.io/live-migrate: \"true\") off a node whose memory is forecast to run out first" };
        var oomGuardMargin = new Option<double>("--oom-guard-margin") { Description = "Start a move when the forecast is below the estimated move time times this", DefaultValueFactory = _ => 1.5 };
        var oomGuardReserve = new Option<double>("--oom-guard-reserve") { Description = "Forecast to the node's capacity (or a container's limit) less this share of it, [0, 0.5)", DefaultValueFactory = _ => 0.05 };
        var oomGuardCooldown = new Option<string>("--oom-guard-cooldown") { Description = "No second guard migration of a pod within this (Go duration)", DefaultValueFactory = _ => "5m" };
        var oomGuardSettle = new Option<string>("--oom-guard-settle") { Description = "After a container starts or is restored on a node, observe its growth this long before acting (Go duration; 0s: none)", DefaultValueFactory = _ => "10s" };
        var oomGuardVerify = new Option<string?>("--oom-guard-verify-window") { Description = "verifyWindow of the guard's PodMigrations (default: the PodMigration default)" };
        var webhookPort = new Option<int>("--webhook-port") { Description = $"HTTPS port of the pods/eviction admission webhook (drain live-migrates opted-in pods; 0: not served; in deploy/: {EvictionWebhookOptions.DefaultPort})" };
        var webhookTlsDir = new Option<string?>("--webhook-tls-dir") { Description = "Directory with the webhook's tls.crt and tls.key (the Secret podmigrate-webhook-tls mounted)" };
        var webhookListen = new Option<string>("--webhook-listen") { Description = "Address the webhook listens on", DefaultValueFactory = _ => "0.0.0.0" };
        var command = new Command("controller", "Run the PodMigrate controller: PodMigrations and clone-of pods, until SIGTERM")
        {
            kubeconfig, ns, watchNamespace, leaderElect, identity, workers, agentNamespace, agentTlsSecret, agentTlsServerName, agentTlsDir, agentInsecure, agentStatic, metricsPort,
            oomGuard, oomGuardMargin, oomGuardReserve, oomGuardCooldown, oomGuardSettle, oomGuardVerify,
            webhookPort, webhookTlsDir, webhookListen,
        };
        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var agents = new AgentConnectionOptions
            {
                Namespace = parse.GetValue(agentNamespace)!,
                Insecure = parse.GetValue(agentInsecure),
                TlsSecretName = parse.GetValue(agentTlsSecret)!,
                TlsSecretNamespace = parse.GetValue(ns)!,
                TlsDirectory = parse.GetValue(agentTlsDir) ?? "",
                TlsServerName = parse.GetValue(agentTlsServerName) ?? "",
            };
            foreach (var entry in parse.GetValue(agentStatic) ?? [])
            {
                var at = entry.IndexOf('=', StringComparison.Ordinal);
                if (at <= 0 || at == entry.Length - 1)
                {
                    throw PodMigrateException.InvalidArgument($"--agent '{entry}': expected NODE=ADDRESS, e.g. node-a=https://10.0.0.5:7440");
                }
                agents.StaticAgents[entry[..at]] = entry[(at + 1)..];
            }
            var options = new ControllerOptions
            {
                WatchNamespace = parse.GetValue(watchNamespace),
                LeaseNamespace = parse.GetValue(ns)!,
                LeaderElect = parse.GetValue(leaderElect),
                Identity = parse.GetValue(identity)!,
                Workers = parse.GetValue(workers),
                OomGuard = parse.GetValue(oomGuard)
                    ? new OomGuardSettings
                    {
                        Margin = parse.GetValue(oomGuardMargin),
                        Reserve = parse.GetValue(oomGuardReserve),
                        Cooldown = KubeDuration.Parse(parse.GetValue(oomGuardCooldown)!, "--oom-guard-cooldown"),
                        SettleTime = KubeDuration.Parse(parse.GetValue(oomGuardSettle)!, "--oom-guard-settle"),
                        VerifyWindow = parse.GetValue(oomGuardVerify),
                    }
                    : null,
            };
            var config = await CliHosting.LoadKubeConfigAsync(parse.GetValue(kubeconfig), cancellationToken);
            using var loggerFactory = CliHosting.ConsoleLoggerFactory();
            using var api = new KubernetesApiClient(config);
            // Made (and its configuration validated) before the host: the host owns and disposes it.
            var controller = PodMigrateController.Create(api, agents, options, loggerFactory);
            using var host = BuildHost(controller, parse.GetValue(metricsPort));
            await using var webhook = await StartWebhookAsync(api, parse.GetValue(webhookPort), parse.GetValue(webhookTlsDir), parse.GetValue(webhookListen)!,
                options.Identity, loggerFactory, cancellationToken);
            await host.RunControllerAsync(cancellationToken);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    /// <summary>The pods/eviction admission webhook (HTTPS), when a port is given.</summary>
    private static async Task<IAsyncDisposable> StartWebhookAsync(KubernetesApiClient api, int port, string? tlsDirectory, string listen, string identity,
        ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (port <= 0)
        {
            return new NoHealth();
        }
        if (!IPAddress.TryParse(listen, out var address))
        {
            throw PodMigrateException.InvalidArgument($"--webhook-listen '{listen}': not an IP address");
        }
        var server = await EvictionWebhookServer.StartAsync(api, new EvictionWebhookOptions
        {
            Address = address,
            Port = port,
            TlsDirectory = tlsDirectory ?? throw PodMigrateException.InvalidArgument("--webhook-port needs --webhook-tls-dir"),
            Identity = identity,
        }, loggers, null, cancellationToken);
        Console.Error.WriteLine($"serving the eviction webhook on https://{listen}:{server.Port}{EvictionWebhookOptions.Path}");
        return server;
    }

    /// <summary>
    /// The controller as a generic-host application (its loop a hosted service, SIGTERM stops it); with a port, Kestrel
    /// serves /metrics, /readyz (informers synced, API server reachable; whether it leads), /livez and /healthz on HTTP/1.1.
    /// </summary>
    private static IHost BuildHost(PodMigrateController controller, int port)
    {
        if (port <= 0)
        {
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.ClearProviders();
            builder.Services.AddPodMigrateController(_ => controller);
            return builder.Build();
        }
        var web = WebApplication.CreateSlimBuilder();
        web.Logging.ClearProviders();
        web.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Any, port, listen => listen.Protocols = HttpProtocols.Http1));
        web.Services.AddPodMigrateController(_ => controller);
        var app = web.Build();
        app.MapPodMigrateControllerEndpoints();
        Console.Error.WriteLine($"serving /metrics, /readyz, /livez and /healthz on port {port}");
        return app;
    }

    private sealed class NoHealth : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
