using k8s.Models;
using Microsoft.Extensions.Logging;

namespace PodMigrate.NodeEmulator.Probes;

/// <summary>
/// The readiness prober of one running container (kubelet's prober worker): not ready until the probe has succeeded
/// successThreshold times in a row, no probe before initialDelaySeconds after the container started, then one probe
/// every periodSeconds; ready turns false after failureThreshold failures in a row. Lives as long as the container.
/// </summary>
internal sealed class ReadinessWorker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Prober _prober;
    private readonly V1Probe _probe;
    private readonly ProbeTarget _target;
    private readonly DateTimeOffset _startedAt;
    private readonly Action _changed;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _subject;
    private readonly Task _loop;
    private volatile bool _ready;

    public ReadinessWorker(Prober prober, V1Probe probe, ProbeTarget target, DateTimeOffset startedAt, Action changed, TimeProvider time, ILogger logger, string subject)
    {
        _prober = prober;
        _probe = probe;
        _target = target;
        _startedAt = startedAt;
        _changed = changed;
        _time = time;
        _logger = logger;
        _subject = subject;
        _loop = RunAsync(_stop.Token);
    }

    public ProbeTarget Target => _target;

    public bool Ready => _ready;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // Stopped: the container went away or the pod is being torn down.
        }
        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        await Task.Yield();
        var period = TimeSpan.FromSeconds(Math.Max(1, _probe.PeriodSeconds ?? 10));
        var successThreshold = Math.Max(1, _probe.SuccessThreshold ?? 1);
        var failureThreshold = Math.Max(1, _probe.FailureThreshold ?? 3);
        var initialWait = _startedAt + TimeSpan.FromSeconds(Math.Max(0, _probe.InitialDelaySeconds ?? 0)) - _time.GetUtcNow();
        if (initialWait > TimeSpan.Zero)
        {
            await Task.Delay(initialWait, _time, cancellationToken);
        }
        var successes = 0;
        var failures = 0;
        using var timer = new PeriodicTimer(period, _time);
        do
        {
            var result = await _prober.ProbeAsync(_probe, _target, cancellationToken);
            if (result.Success)
            {
                failures = 0;
                if (++successes >= successThreshold && !_ready)
                {
                    _ready = true;
                    EmulatorLog.ReadinessChanged(_logger, _subject, true, "");
                    _changed();
                }
            }
            else
            {
                successes = 0;
                if (++failures >= failureThreshold && _ready)
                {
                    _ready = false;
                    EmulatorLog.ReadinessChanged(_logger, _subject, false, result.Output);
                    _changed();
                }
                else
                {
                    EmulatorLog.ReadinessProbeFailed(_logger, _subject, result.Output);
                }
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }
}
