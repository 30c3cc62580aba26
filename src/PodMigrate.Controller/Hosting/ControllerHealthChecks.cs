using k8s;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Hosting;

/// <summary>Ready needs every informer's first list in its cache: before it, reconcilers would act on a partial view.</summary>
internal sealed class InformersSyncedCheck(PodMigrateController controller) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var informers = controller.Informers;
        var unsynced = informers.Where(i => !i.HasSynced).Select(i => i.Name).ToList();
        return Task.FromResult(unsynced.Count == 0
            ? HealthCheckResult.Healthy($"{string.Join(", ", informers.Select(i => i.Name))} synced")
            : HealthCheckResult.Unhealthy($"not synced: {string.Join(", ", unsynced)}"));
    }
}

/// <summary>
/// Ready needs the API server to answer now (a synced cache stays synced when the server goes away): a GET of the
/// controller's Lease, bounded; NotFound is an answer too.
/// </summary>
internal sealed class ApiServerReachableCheck(PodMigrateController controller, ControllerOptions options) : IHealthCheck
{
    /// <summary>How long the API server may take to answer the probe.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(Timeout);
        try
        {
            await KubeApiErrors.CallAsync(token => controller.Api.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync(options.LeaseName, options.LeaseNamespace, cancellationToken: token),
                $"get lease {options.LeaseNamespace}/{options.LeaseName}", bounded.Token);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
        catch (PodMigrateException e) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"API server: {e.Message}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"API server did not answer within {Timeout.TotalSeconds:0} s");
        }
        return HealthCheckResult.Healthy("reachable");
    }
}

/// <summary>Says whether this replica leads; never fails: a standby replica is ready to take over, and must stay in its Service.</summary>
internal sealed class LeadershipCheck(PodMigrateController controller, ControllerOptions options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var description = controller.Elector switch
        {
            null => "leader election off: this replica reconciles",
            { IsLeader: true } => $"leading (lease {options.LeaseNamespace}/{options.LeaseName} held by {options.Identity})",
            { ObservedLeader: { Length: > 0 } holder } => $"standby (lease {options.LeaseNamespace}/{options.LeaseName} held by {holder})",
            _ => $"standby (no holder of lease {options.LeaseNamespace}/{options.LeaseName} seen)",
        };
        return Task.FromResult(HealthCheckResult.Healthy(description));
    }
}

/// <summary>Alive while the controller's loop runs; a loop that ended is dead (the host then stops the process too).</summary>
internal sealed class LoopAliveCheck(ControllerService service) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        => Task.FromResult(service.Alive
            ? HealthCheckResult.Healthy("running")
            : HealthCheckResult.Unhealthy(service.Failure is { } failure ? $"ended: {failure.SourceException.Message}" : "ended"));
}
