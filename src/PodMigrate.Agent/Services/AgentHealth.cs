using Microsoft.Extensions.Diagnostics.HealthChecks;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Services;

/// <summary>
/// What the agent needs to do its work: containerd answering on its socket and the share listable. One answer for
/// the agent's own Health RPC and for grpc.health.v1 (a kubelet <c>grpc:</c> probe, grpc-health-probe).
/// </summary>
internal sealed class AgentHealth(ContainerdConnection containerd, ICheckpointStore store)
{
    /// <summary>What is wrong, one line each; empty when the agent can serve.</summary>
    public async Task<IReadOnlyList<string>> ProblemsAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        try
        {
            await containerd.VersionAsync(cancellationToken);
        }
        catch (PodMigrateException e)
        {
            problems.Add($"containerd ({containerd.Target}): {e.Message}");
        }
        try
        {
            await store.ListAsync(null, cancellationToken);
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException)
        {
            problems.Add($"share: {e.Message}");
        }
        return problems;
    }
}

/// <summary>The agent's health as an ASP.NET Core health check, which Grpc.AspNetCore.HealthChecks serves as grpc.health.v1.</summary>
internal sealed class AgentHealthCheck(AgentHealth health) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var problems = await health.ProblemsAsync(cancellationToken);
        return problems.Count == 0 ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy(string.Join("; ", problems));
    }
}
