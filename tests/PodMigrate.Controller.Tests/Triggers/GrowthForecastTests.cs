using PodMigrate.Controller.Triggers.OomGuard;

namespace PodMigrate.Controller.Tests.Triggers;

/// <summary>The forecast: a least-squares rate over the window, noise is not growth, the time until the capacity.</summary>
[Trait("Category", "Unit")]
public sealed class GrowthForecastTests
{
    private const long Mi = 1024 * 1024;
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly OomGuardSettings Settings = new();

    private static List<MemoryPoint> Line(int seconds, double startMib, double mibPerSecond, Func<int, double>? noiseMib = null)
        => [.. Enumerable.Range(0, seconds + 1).Select(i => new MemoryPoint(T0.AddSeconds(i), (long)((startMib + mibPerSecond * i + (noiseMib?.Invoke(i) ?? 0)) * Mi)))];

    private static bool Growing(GrowthFit fit) => fit.IsGrowing(Settings.MinimumSamples, Settings.MinimumSpan, Settings.MinimumGrowth, Settings.TStatistic);

    [Fact]
    public void A_steady_growth_is_fitted_exactly_and_forecast_to_the_capacity()
    {
        var points = Line(10, 100, 10);
        var fit = GrowthForecast.Fit(points, TimeSpan.FromSeconds(20));
        fit.BytesPerSecond.ShouldBe(10.0 * Mi, 1);
        fit.LevelNow.ShouldBe(200.0 * Mi, 16);
        Growing(fit).ShouldBeTrue();
        var forecast = GrowthForecast.Forecast(fit, points[^1].Bytes, 300 * Mi, Growing(fit));
        forecast.TimeToExhaustion!.Value.TotalSeconds.ShouldBe(10, 0.01);
    }

    [Fact]
    public void Only_the_window_counts()
    {
        // Flat for a minute, then growing: the last 10 s decide.
        var points = Enumerable.Range(0, 60).Select(i => new MemoryPoint(T0.AddSeconds(i), 100 * Mi))
            .Concat(Enumerable.Range(1, 10).Select(i => new MemoryPoint(T0.AddSeconds(59 + i), (100 + 5 * i) * Mi)))
            .ToList();
        GrowthForecast.Fit(points, TimeSpan.FromSeconds(9)).BytesPerSecond.ShouldBe(5.0 * Mi, 1);
    }

    [Fact]
    public void A_flat_level_with_jitter_is_not_growth()
    {
        // ±8 MiB of noise around 400 MiB: the fitted slope is within its error, no forecast.
        var points = Line(20, 400, 0, i => i % 2 == 0 ? 8 : -8);
        var fit = GrowthForecast.Fit(points, TimeSpan.FromSeconds(20));
        Growing(fit).ShouldBeFalse();
        GrowthForecast.Forecast(fit, points[^1].Bytes, 500 * Mi, Growing(fit)).TimeToExhaustion.ShouldBeNull();
    }

    [Fact]
    public void Growth_through_noise_is_still_growth()
    {
        var points = Line(20, 100, 8, i => (i * 7919 % 13) - 6);
        var fit = GrowthForecast.Fit(points, TimeSpan.FromSeconds(20));
        Growing(fit).ShouldBeTrue();
        fit.BytesPerSecond.ShouldBe(8.0 * Mi, 1.0 * Mi);
    }

    [Fact]
    public void Too_few_readings_or_too_short_a_span_are_not_growth()
    {
        Growing(GrowthForecast.Fit(Line(2, 100, 50), TimeSpan.FromSeconds(20))).ShouldBeFalse();
        var dense = Enumerable.Range(0, 10).Select(i => new MemoryPoint(T0.AddMilliseconds(100 * i), (100 + i) * Mi)).ToList();
        Growing(GrowthForecast.Fit(dense, TimeSpan.FromSeconds(20))).ShouldBeFalse();
        GrowthForecast.Fit([], TimeSpan.FromSeconds(20)).Samples.ShouldBe(0);
    }

    [Fact]
    public void A_sudden_step_counts_at_once()
    {
        var points = Line(10, 100, 10);
        points[^1] = points[^1] with { Bytes = 280 * Mi };
        var fit = GrowthForecast.Fit(points, TimeSpan.FromSeconds(20));
        var forecast = GrowthForecast.Forecast(fit, points[^1].Bytes, 300 * Mi, growing: true);
        forecast.Level.ShouldBeGreaterThanOrEqualTo(280.0 * Mi);
        forecast.TimeToExhaustion!.Value.ShouldBeLessThan(TimeSpan.FromSeconds(3));
    }

    [Fact]
    public void Already_over_the_capacity_is_no_time_left()
        => GrowthForecast.Forecast(GrowthForecast.Fit(Line(10, 300, 10), TimeSpan.FromSeconds(20)), 400 * Mi, 300 * Mi, growing: true)
            .TimeToExhaustion.ShouldBe(TimeSpan.Zero);

    [Fact]
    public void The_move_estimate_is_a_conservative_default_without_history_and_learns_from_the_slowest_move()
    {
        MoveTimeEstimate.Estimate(320 * Mi, [], Settings).TotalSeconds.ShouldBe(5 + 10, 0.01);
        // 100 MiB took 4 s, 400 MiB took 6 s: 800 MiB takes at most 4 s * 8 = 32 s; a 50 MiB pod at most as long as the quickest... the slowest.
        MoveObservation[] history = [new(100 * Mi, TimeSpan.FromSeconds(4)), new(400 * Mi, TimeSpan.FromSeconds(6))];
        MoveTimeEstimate.Estimate(800 * Mi, history, Settings).TotalSeconds.ShouldBe(32, 0.01);
        MoveTimeEstimate.Estimate(50 * Mi, history, Settings).TotalSeconds.ShouldBe(6, 0.01);
        MoveTimeEstimate.Estimate(1 * Mi, [new(100 * Mi, TimeSpan.FromMilliseconds(500))], Settings).ShouldBe(Settings.MinimumMove);
    }
}
