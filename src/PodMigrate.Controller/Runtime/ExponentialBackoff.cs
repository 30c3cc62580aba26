namespace PodMigrate.Controller.Runtime;

/// <summary>Delays that double from an initial value up to a cap, with optional random stretch so that many clients do not retry in step.</summary>
internal sealed class ExponentialBackoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private readonly double _jitter;
    private int _failures;

    /// <param name="jitter">Each delay is stretched by a random factor in [1, 1 + jitter); 0 makes delays exact.</param>
    public ExponentialBackoff(TimeSpan initial, TimeSpan max, double jitter)
    {
        if (initial <= TimeSpan.Zero || max < initial)
        {
            throw new ArgumentOutOfRangeException(nameof(initial), $"the backoff needs 0 < initial ({initial}) <= max ({max})");
        }
        ArgumentOutOfRangeException.ThrowIfNegative(jitter);
        _initial = initial;
        _max = max;
        _jitter = jitter;
    }

    public int Failures => _failures;

    /// <summary>The delay before the next attempt after one more failure.</summary>
    public TimeSpan Next()
    {
        var delay = Delay(_initial, _max, _failures);
        _failures = _failures == int.MaxValue ? _failures : _failures + 1;
        if (_jitter > 0)
        {
            delay = TimeSpan.FromTicks(Math.Min(_max.Ticks, (long)(delay.Ticks * (1 + (Random.Shared.NextDouble() * _jitter)))));
        }
        return delay;
    }

    public void Reset() => _failures = 0;

    /// <summary><paramref name="initial"/> × 2^<paramref name="exponent"/>, capped at <paramref name="max"/> (without overflowing).</summary>
    public static TimeSpan Delay(TimeSpan initial, TimeSpan max, int exponent)
    {
        var ticks = initial.Ticks * Math.Pow(2, Math.Min(exponent, 62));
        return ticks >= max.Ticks ? max : TimeSpan.FromTicks((long)ticks);
    }
}
