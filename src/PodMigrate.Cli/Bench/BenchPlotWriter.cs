using System.Globalization;
using ScottPlot;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// Draws <see cref="BenchPlotData"/> as PNG files with ScottPlot: the downtime against memory size (one line per method,
/// the raw floor among them), and each move's phases as stacked bars of their shares. Each file is written under a
/// temporary name in the same directory and renamed, so a reader never sees half a picture.
/// </summary>
internal static class BenchPlotWriter
{
    public const string DowntimeFile = "downtime-vs-memory.png";
    public const string PhasesFile = "phase-shares.png";
    private const int Width = 900;
    private const int Height = 560;

    /// <summary>Writes the plots that have data into <paramref name="directory"/> (created if missing); returns their paths.</summary>
    public static IReadOnlyList<string> Write(BenchPlotData data, string directory, string title)
    {
        ArgumentNullException.ThrowIfNull(data);
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        if (data.Downtime.Any(s => s.SizesMib.Count > 0))
        {
            var path = Path.Combine(directory, DowntimeFile);
            Save(DowntimePlot(data, title), path);
            written.Add(path);
        }
        if (data.Phases.Count > 0)
        {
            var path = Path.Combine(directory, PhasesFile);
            Save(PhasesPlot(data, title), path);
            written.Add(path);
        }
        return written;
    }

    private static Plot DowntimePlot(BenchPlotData data, string title)
    {
        var plot = new Plot();
        var markers = new[] { MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledDiamond, MarkerShape.FilledTriangleUp, MarkerShape.OpenCircle };
        var index = 0;
        foreach (var series in data.Downtime.Where(s => s.SizesMib.Count > 0))
        {
            var scatter = plot.Add.Scatter(series.SizesMib.ToArray(), series.Seconds.ToArray());
            scatter.LegendText = series.Name;
            scatter.LineWidth = 2;
            scatter.MarkerSize = 8;
            scatter.MarkerShape = markers[index % markers.Length];
            if (series.Name.StartsWith("floor", StringComparison.Ordinal))
            {
                scatter.LinePattern = LinePattern.Dashed;
            }
            index++;
        }
        plot.Title($"Downtime versus memory size — {title}");
        plot.XLabel("memory of the workload (MiB)");
        plot.YLabel("downtime (s)");
        // From zero on both axes: the reader sees how much of the downtime is fixed and how it grows with memory.
        var drawn = data.Downtime.Where(s => s.SizesMib.Count > 0).ToList();
        plot.Axes.SetLimits(0, drawn.Max(s => s.SizesMib.Max()) * 1.08, 0, Math.Max(0.1, drawn.Max(s => s.Seconds.Max())) * 1.15);
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    private static Plot PhasesPlot(BenchPlotData data, string title)
    {
        var plot = new Plot();
        var names = data.PhaseNames;
        // Twenty colours: a move has up to a dozen phases, and ten (the default palette) would repeat.
        var palette = new ScottPlot.Palettes.Category20();
        var colors = names.Select((_, i) => palette.GetColor(i)).ToArray();
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (var i = 0; i < data.Phases.Count; i++)
        {
            var bar = data.Phases[i];
            var shares = bar.Shares;
            double bottom = 0;
            for (var j = 0; j < bar.Segments.Count; j++)
            {
                var top = bottom + (shares[j] * 100);
                bars.Add(new Bar
                {
                    Position = i,
                    ValueBase = bottom,
                    Value = top,
                    FillColor = colors[IndexOf(names, bar.Segments[j].Phase)],
                    LineWidth = 0,
                });
                bottom = top;
            }
            ticks.Add(new Tick(i, string.Create(CultureInfo.InvariantCulture, $"{bar.Label}\n{bar.Total:0.00} s")));
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual([.. ticks]);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        for (var k = 0; k < names.Count; k++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = names[k], FillColor = colors[k] });
        }
        plot.Legend.IsVisible = true;
        plot.Legend.Alignment = Alignment.UpperRight;
        plot.Title($"Share of each phase of a move — {title}");
        plot.YLabel("share of the move (%)");
        plot.Axes.SetLimitsY(0, 100);
        plot.Axes.SetLimitsX(-0.6, data.Phases.Count - 0.4 + (data.Phases.Count * 0.6));
        plot.HideGrid();
        return plot;
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (string.Equals(names[i], name, StringComparison.Ordinal))
            {
                return i;
            }
        }
        return 0;
    }

    private static void Save(Plot plot, string path)
    {
        var staging = Path.ChangeExtension(path, ".partial.png");
        try
        {
            plot.SavePng(staging, Width, Height);
            File.Move(staging, path, overwrite: true);
        }
        finally
        {
            File.Delete(staging);
        }
    }
}
