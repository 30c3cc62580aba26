using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace PodMigrate.Agent.Preparing;

/// <summary>
/// Removes prepared staging that has outlived <see cref="AgentOptions.PreparedMaxAge"/>, every quarter of that age (a
/// controller that died or lost the migration never releases it). Start-up's sweep of unsealed staging is
/// <see cref="Operations.AgentRecovery"/>'s.
/// </summary>
internal sealed class PreparedStagingJanitor(IOptions<AgentOptions> options, PreparedCheckpoints prepared, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var period = options.Value.PreparedMaxAge / 4;
        using var timer = new PeriodicTimer(period < TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : period, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                prepared.Sweep(startup: false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
