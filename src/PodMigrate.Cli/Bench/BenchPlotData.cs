namespace PodMigrate.Cli.Bench;

/// <summary>One line of the downtime plot: seconds (<paramref name="Seconds"/>) against memory size in MiB (<paramref name="SizesMib"/>), sizes ascending.</summary>
internal sealed record PlotSeries(string Name, IReadOnlyList<double> SizesMib, IReadOnlyList<double> Seconds);

/// <summary>One phase of one bar: its name and seconds.</summary>
internal sealed record PhaseSegment(string Phase, double Seconds);

/// <summary>
/// One stacked bar: a move of one size by one method, its phases in the order they happen. The plot shows each phase's
/// share of <see cref="Total"/> (the sum of the segments, which partition the move or its pause; see <see cref="BenchPlotData"/>).
/// </summary>
internal sealed record PhaseBar(string Label, IReadOnlyList<PhaseSegment> Segments)
{
    public double Total => Segments.Sum(s => s.Seconds);

    /// <summary>Each segment's share of the total, in [0, 1]; all zero for an empty bar.</summary>
    public IReadOnlyList<double> Shares => [.. Segments.Select(s => Total > 0 ? s.Seconds / Total : 0)];
}

/// <summary>What the bench's plots show, taken from its result records (the writer only draws it).</summary>
internal sealed record BenchPlotData(IReadOnlyList<PlotSeries> Downtime, IReadOnlyList<PhaseBar> Phases)
{
    /// <summary>Every phase name in the bars, in the order of first appearance (one colour each, one legend entry each).</summary>
    public IReadOnlyList<string> PhaseNames => [.. Phases.SelectMany(b => b.Segments.Select(s => s.Phase)).Distinct(StringComparer.Ordinal)];

    /// <summary>
    /// The series and bars of one bench run. Downtime against memory size: for each agent method (and codec) the median
    /// downtime of its rows, the runtimeclass path's workload-seen pause, and the raw floor (CRIU dump + restore, no
    /// codec, no share) as a reference line. Phases: a runtimeclass move is precheck, then the pause's critical path
    /// (source stopped → checkpoint sealed or published → prepared → clone created → restored process running); an agent move is
    /// its checkpoint's phases then its restore's phases. Negative steps (overlapping phases) count as zero. Pure.
    /// </summary>
    public static BenchPlotData From(IReadOnlyList<MigrationBenchRow> rows, IReadOnlyList<RuntimeClassSample> runtimeClass)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(runtimeClass);
        var series = new List<PlotSeries>();
        foreach (var group in rows.GroupBy(r => (r.Codec, r.Method)))
        {
            series.Add(Series($"{group.Key.Method} ({group.Key.Codec}) downtime", group.Select(r => (r.SizeMib, r.Downtime))));
        }
        if (runtimeClass.Count > 0)
        {
            foreach (var group in runtimeClass.GroupBy(s => s.Codec))
            {
                series.Add(Series($"{RuntimeClassBench.Method} ({group.Key}) pause seen", group.Select(s => (s.SizeMib, s.Seen.TotalSeconds))));
            }
            series.Add(Series("floor: criu dump + restore (tmpfs)", runtimeClass.Select(s => (s.SizeMib, s.Floor.Total.TotalSeconds))));
        }
        else if (rows.Count > 0)
        {
            series.Add(Series("floor: criu dump + restore (tmpfs)", rows.Select(r => (r.SizeMib, r.FloorDump + r.FloorRestore))));
        }

        var bars = new List<PhaseBar>();
        foreach (var group in runtimeClass.GroupBy(s => (s.SizeMib, s.Codec)).OrderBy(g => g.Key.SizeMib))
        {
            var samples = group.ToList();
            var segments = new List<PhaseSegment> { new("precheck", Median(samples.Select(s => s.Timings.GetValueOrDefault("precheck").TotalSeconds))) };
            foreach (var step in RuntimeClassSample.CriticalPathSteps)
            {
                segments.Add(new PhaseSegment(step, Median(samples.Select(s => s.CriticalPath.GetValueOrDefault(step).TotalSeconds))));
            }
            bars.Add(new PhaseBar($"{group.Key.SizeMib} MiB\n{RuntimeClassBench.Method}", segments));
        }
        foreach (var r in rows.OrderBy(r => r.SizeMib))
        {
            var segments = r.CheckpointPhases.Select(p => new PhaseSegment("checkpoint." + p.Key, Math.Max(0, p.Value)))
                .Concat(r.RestorePhases.Select(p => new PhaseSegment("restore." + p.Key, Math.Max(0, p.Value))))
                .ToList();
            bars.Add(new PhaseBar($"{r.SizeMib} MiB\n{r.Method}", segments));
        }
        return new BenchPlotData(series, bars);
    }

    private static PlotSeries Series(string name, IEnumerable<(int SizeMib, double Seconds)> points)
    {
        var bySize = points.GroupBy(p => p.SizeMib).OrderBy(g => g.Key).ToList();
        return new PlotSeries(name, [.. bySize.Select(g => (double)g.Key)], [.. bySize.Select(g => GuardFigures.Median(g.Select(p => p.Seconds)))]);
    }

    private static double Median(IEnumerable<double> values) => Math.Max(0, GuardFigures.Median(values));
}
