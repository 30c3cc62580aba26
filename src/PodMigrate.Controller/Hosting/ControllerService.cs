using System.Runtime.ExceptionServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Runtime;

namespace PodMigrate.Controller.Hosting;

/// <summary>
/// The controller's loop (<see cref="PodMigrateController.RunAsync"/>) as the generic host's background service. When the
/// loop ends on its own (an informer stopped, the elector failed) the application stops, and
/// <see cref="ControllerHosting.RunControllerAsync"/> rethrows the failure, so the process exits with an error and is
/// restarted, as before the host.
/// </summary>
internal sealed class ControllerService(PodMigrateController controller, IHostApplicationLifetime lifetime, ILogger<ControllerService> logger) : BackgroundService
{
    private volatile bool _ended;

    /// <summary>The loop runs, or has not started yet (a process starting is alive).</summary>
    public bool Alive => !_ended;

    public ExceptionDispatchInfo? Failure { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Let the host start its other services (Kestrel: the health endpoints) while the informers sync.
        await Task.Yield();
        try
        {
            await controller.RunAsync(stoppingToken);
        }
#pragma warning disable CA1031 // the loop's boundary: whatever ended it is kept for the exit code and logged
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
#pragma warning restore CA1031
        {
            // The loop's boundary: recorded for the exit code, logged, and the application stopped below.
            Failure = ExceptionDispatchInfo.Capture(e);
            RuntimeLog.ControllerLoopFailed(logger, e);
        }
        finally
        {
            _ended = true;
            if (!stoppingToken.IsCancellationRequested)
            {
                lifetime.StopApplication();
            }
        }
    }
}
