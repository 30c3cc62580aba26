using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Telemetry;

namespace PodMigrate.Agent.NodeInfo;

/// <summary>
/// Asks CRIU its version and features once at start-up, in the background, so that the first checkpoint's precheck
/// does not pay the two `criu swrk` runs (~0.2 s) while its source waits to be frozen.
/// </summary>
internal sealed class CriuWarmup(CriuCapabilities criu, ILogger<CriuWarmup> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await criu.GetAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            AgentLog.CriuWarmupFailed(logger, e);
        }
    }
}
