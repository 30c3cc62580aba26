namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>One memory reading: when, and how many bytes were in use (the working set).</summary>
internal readonly record struct MemoryPoint(DateTimeOffset At, long Bytes);

/// <summary>
/// A least-squares line through the recent readings: the growth rate (bytes per second), the level it puts at the latest
/// reading, and how sure the rate is (its standard error). Pure.
/// </summary>
internal readonly record struct GrowthFit(int Samples, TimeSpan Span, double BytesPerSecond, double StandardError, double LevelNow, DateTimeOffset At)
{
    /// <summary>
    /// Growth that is there rather than noise: enough readings over enough time, a rate above <paramref name="minimumRate"/>
    /// and at least <paramref name="tStatistic"/> standard errors above zero (a steady level with jitter is not growth).
    /// </summary>
    public bool IsGrowing(int minimumSamples, TimeSpan minimumSpan, double minimumRate, double tStatistic)
        => Samples >= minimumSamples && Span >= minimumSpan && BytesPerSecond > minimumRate
           && (StandardError <= 0 || BytesPerSecond / StandardError >= tStatistic);
}

/// <summary>The forecast: how long until <paramref name="Capacity"/> is reached at the fitted rate (null: not growing).</summary>
internal readonly record struct ExhaustionForecast(long Capacity, double Level, double BytesPerSecond, TimeSpan? TimeToExhaustion)
{
    public static ExhaustionForecast NotGrowing(long capacity, double level) => new(capacity, level, 0, null);
}

/// <summary>Fits the growth of memory use and forecasts when it runs out. Pure: readings in, numbers out.</summary>
internal static class GrowthForecast
{
    /// <summary>The least-squares fit of the readings within <paramref name="window"/> of the latest one.</summary>
    public static GrowthFit Fit(IReadOnlyList<MemoryPoint> points, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (points.Count == 0)
        {
            return default;
        }
        var latest = points[^1].At;
        var recent = points.Where(p => latest - p.At <= window).ToList();
        var n = recent.Count;
        if (n < 2)
        {
            return new GrowthFit(n, TimeSpan.Zero, 0, 0, recent[^1].Bytes, latest);
        }
        // x in seconds before the latest reading (≤ 0), so the intercept is the level now.
        double sx = 0, sy = 0;
        foreach (var p in recent)
        {
            sx += (p.At - latest).TotalSeconds;
            sy += p.Bytes;
        }
        var mx = sx / n;
        var my = sy / n;
        double sxx = 0, sxy = 0;
        foreach (var p in recent)
        {
            var dx = (p.At - latest).TotalSeconds - mx;
            sxx += dx * dx;
            sxy += dx * (p.Bytes - my);
        }
        if (sxx <= 0)
        {
            return new GrowthFit(n, TimeSpan.Zero, 0, 0, my, latest);
        }
        var slope = sxy / sxx;
        var intercept = my - slope * mx;
        double residuals = 0;
        foreach (var p in recent)
        {
            var e = p.Bytes - (intercept + slope * (p.At - latest).TotalSeconds);
            residuals += e * e;
        }
        var standardError = n > 2 ? Math.Sqrt(residuals / (n - 2) / sxx) : 0;
        return new GrowthFit(n, latest - recent[0].At, slope, standardError, intercept, latest);
    }

    /// <summary>
    /// When <paramref name="capacity"/> is reached, from the fitted rate and the higher of the fitted and the last
    /// measured level (a sudden step counts at once). Not growing: no time.
    /// </summary>
    public static ExhaustionForecast Forecast(GrowthFit fit, long lastBytes, long capacity, bool growing)
    {
        var level = Math.Max(fit.LevelNow, lastBytes);
        if (!growing || fit.BytesPerSecond <= 0)
        {
            return ExhaustionForecast.NotGrowing(capacity, level);
        }
        var seconds = Math.Max(0, (capacity - level) / fit.BytesPerSecond);
        return new ExhaustionForecast(capacity, level, fit.BytesPerSecond, TimeSpan.FromSeconds(Math.Min(seconds, TimeSpan.MaxValue.TotalSeconds / 2)));
    }
}
