using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Core.Diagnostics;

namespace PodMigrate.Agent.Memory;

/// <summary>When the agent's native memory is given back, and how often it looks.</summary>
internal sealed class NativeMemoryReleaseOptions
{
    /// <summary>How often the agent's anonymous RSS is read.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Growth of the anonymous RSS since the last release (or start) that calls for one.</summary>
    public long GrowthKiB { get; init; } = 8 * 1024;

    /// <summary>Where the anonymous RSS is read (KiB): this process's, except in tests of the decision's wiring.</summary>
    public Func<long> ReadAnonKiB { get; init; } = () => ProcessMemory.Current().AnonKiB;
}

/// <summary>
/// Gives the native memory the agent's bulk work freed back to the kernel. libzstd's compression and decompression
/// contexts (their window, job and worker buffers: tens of MiB per checkpoint, allocated on libzstd's own worker threads),
/// TLS and the JIT allocate through glibc's malloc; once freed, that memory stays in the arena of the thread that used it
/// (free() returns only the top of a heap, and each thread may get its own 64 MiB arena). Nothing leaks, but the agent's
/// RSS keeps the high-water mark of every arena: the soak saw ~50 MiB per agent over 177 migrations, and malloc_stats
/// after 40 showed 16 arenas holding 109 MB for 8.8 MB in use. malloc_trim(0) returns the free pages of every arena. The
/// anonymous RSS is read every <see cref="NativeMemoryReleaseOptions.Interval"/> (one read of /proc/self/status); a
/// release follows growth during work and the end of work (<see cref="ShouldRelease"/>), never an idle agent.
/// </summary>
internal sealed class NativeMemoryRelease(NativeMemoryReleaseOptions options, TimeProvider time, ILogger<NativeMemoryRelease> logger) : BackgroundService
{
    /// <summary>Changes smaller than this between two looks count as settled.</summary>
    public const long SettledKiB = 1024;

    private long _baselineKiB = -1;
    private long _previousKiB = -1;
    private bool _changedSinceRelease;

    /// <summary>
    /// Whether to release now: the anonymous RSS grew by <paramref name="growthKiB"/> since the last release (work is
    /// going on), or it moved since the last release and has now settled (the work ended: what it freed is still
    /// resident). Nothing while the agent stays idle.
    /// </summary>
    public static bool ShouldRelease(long anonKiB, long previousKiB, long baselineKiB, bool changedSinceRelease, long growthKiB)
        => baselineKiB >= 0 && (anonKiB - baselineKiB >= growthKiB || (changedSinceRelease && Math.Abs(anonKiB - previousKiB) < SettledKiB));

    /// <summary>Looks once: releases if <see cref="ShouldRelease"/> says so; returns the KiB given back (0: none).</summary>
    public long Check()
    {
        var before = options.ReadAnonKiB();
        if (_baselineKiB < 0)
        {
            _baselineKiB = _previousKiB = before;
            return 0;
        }
        _baselineKiB = Math.Min(_baselineKiB, before);
        var changed = _changedSinceRelease || Math.Abs(before - _previousKiB) >= SettledKiB;
        if (!ShouldRelease(before, _previousKiB, _baselineKiB, changed, options.GrowthKiB))
        {
            _changedSinceRelease = changed;
            _previousKiB = before;
            return 0;
        }
        ProcessMemory.ReleaseFreeNativeMemory();
        var after = options.ReadAnonKiB();
        _baselineKiB = _previousKiB = after;
        _changedSinceRelease = false;
        AgentLog.NativeMemoryReleased(logger, before - after, before, after);
        return Math.Max(0, before - after);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Interval, time);
        Check();
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            Check();
        }
    }
}
