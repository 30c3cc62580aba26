using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using PodMigrate.Core.Metrics;

namespace PodMigrate.Controller.Hosting;

/// <summary>
/// The controller as a generic-host application: its loop is a hosted service, and its health is the host's health
/// checks. /readyz: the informers have synced and the API server answers (and whether this replica leads, which
/// readiness does not require); /livez (and /healthz, its older name): the loop runs. /metrics: the controller's meter.
/// </summary>
public static class ControllerHosting
{
    private const string Ready = "ready";
    private const string Live = "live";

    /// <summary>Registers the controller (made by <paramref name="create"/>, once), its loop as a hosted service and its health checks.</summary>
    public static IServiceCollection AddPodMigrateController(this IServiceCollection services, Func<IServiceProvider, PodMigrateController> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        services.AddSingleton(create);
        services.AddSingleton(sp => sp.GetRequiredService<PodMigrateController>().Settings);
        services.AddSingleton<ControllerService>();
        services.AddSingleton(_ => new PrometheusExporter(PodMigrateController.MeterName));
        services.AddHostedService(sp => sp.GetRequiredService<ControllerService>());
        services.AddHealthChecks()
            .AddCheck<InformersSyncedCheck>("informers", tags: [Ready])
            .AddCheck<ApiServerReachableCheck>("apiserver", tags: [Ready])
            .AddCheck<LeadershipCheck>("leader", tags: [Ready])
            .AddCheck<LoopAliveCheck>("loop", tags: [Live]);
        return services;
    }

    /// <summary>/readyz, /livez, /healthz (as /livez) and /metrics; plain text, one line per check, 503 when a check fails.</summary>
    public static IEndpointRouteBuilder MapPodMigrateControllerEndpoints(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        endpoints.MapHealthChecks("/readyz", Checks(Ready, "readyz"));
        endpoints.MapHealthChecks("/livez", Checks(Live, "livez"));
        endpoints.MapHealthChecks("/healthz", Checks(Live, "healthz"));
        var exporter = endpoints.ServiceProvider.GetRequiredService<PrometheusExporter>();
        endpoints.MapGet("/metrics", () => Results.Text(exporter.Scrape(), PrometheusExporter.ContentType));
        return endpoints;
    }

    /// <summary>Runs the host until it is stopped (SIGTERM, <paramref name="cancellationToken"/>), then rethrows the failure that ended the controller's loop, if one did.</summary>
    public static async Task RunControllerAsync(this IHost host, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(host);
        // Resolved first: RunAsync disposes the host, and its services with it.
        var loop = host.Services.GetRequiredService<ControllerService>();
        await host.RunAsync(cancellationToken);
        loop.Failure?.Throw();
    }

    private static HealthCheckOptions Checks(string tag, string name) => new()
    {
        Predicate = check => check.Tags.Contains(tag),
        ResponseWriter = (context, report) => WriteAsync(context, report, name),
    };

    /// <summary>As kube-apiserver's verbose health: "[+]name ok: description" or "[-]name failed: reason", then the verdict.</summary>
    private static Task WriteAsync(HttpContext context, HealthReport report, string name)
    {
        var text = new StringBuilder();
        foreach (var (check, entry) in report.Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            var ok = entry.Status == HealthStatus.Healthy;
            text.Append(ok ? "[+]" : "[-]").Append(check).Append(ok ? " ok" : " failed");
            if (entry.Description is { Length: > 0 } description)
            {
                text.Append(": ").Append(description);
            }
            text.Append('\n');
        }
        text.Append(name).Append(report.Status == HealthStatus.Healthy ? " check passed\n" : " check failed\n");
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text.ToString(), context.RequestAborted);
    }
}
