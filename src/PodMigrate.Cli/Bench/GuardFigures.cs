using System.Globalization;
using System.Text.Json;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// One move as the OOM guard counts it: <paramref name="Capture"/> is the time from the decision until the workload's
/// memory is captured (the guard's race with the OOM killer ends there: the frozen source no longer grows), which is
/// what the guard learns from its own migrations (status.timings precheck + checkpoint); the downtime and the whole move
/// are what the workload and the operator see.
/// </summary>
internal sealed record GuardMovePoint(string Method, int SizeMib, double Precheck, double Checkpoint, double Downtime, double Wall)
{
    public double Capture => Precheck + Checkpoint;
}

/// <summary>The medians of one method and size.</summary>
internal sealed record GuardMoveRow(string Method, int SizeMib, int Runs, double Precheck, double Checkpoint, double Capture, double Downtime, double Wall)
{
    /// <summary>The rate of the capture alone (MiB per second of precheck + checkpoint).</summary>
    public double MibPerSecond => Capture > 0 ? SizeMib / Capture : 0;
}

/// <summary>
/// The least-squares line capture ≈ <paramref name="FixedSeconds"/> + MiB / <paramref name="MibPerSecond"/> over one
/// method's sizes: the two numbers the guard's estimate needs before it has moved anything itself
/// (OomGuardSettings.DefaultMoveFixed and DefaultMoveBytesPerSecond).
/// </summary>
internal sealed record GuardMoveFit(string Method, int Sizes, double FixedSeconds, double MibPerSecond)
{
    public double EstimateSeconds(int sizeMib) => FixedSeconds + sizeMib / MibPerSecond;
}

/// <summary>
/// The figures behind the OOM guard, from the bench's own results: how long a move of N MiB takes here, by phase, and
/// the fixed cost and rate a line through them gives. Pure: samples in, rows and fits out; printing beside.
/// </summary>
internal static class GuardFigures
{
    /// <summary>The guard's defaults without history (OomGuardSettings: 5 s + 32 MiB/s), printed for comparison.</summary>
    public const double DefaultFixedSeconds = 5;
    public const double DefaultMibPerSecond = 32;

    /// <summary>
    /// The moves in the bench's results: each runtimeclass sample is a PodMigration through the controller (precheck and
    /// checkpoint from status.timings, the downtime the workload saw, the wall time); each agent row is a checkpoint by
    /// the source agent (no precheck: no controller) restored with one method.
    /// </summary>
    public static IReadOnlyList<GuardMovePoint> Points(IReadOnlyList<MigrationBenchRow> rows, IReadOnlyList<RuntimeClassSample> runtimeClass)
    {
        ArgumentNullException.ThrowIfNull(rows);
        ArgumentNullException.ThrowIfNull(runtimeClass);
        var points = new List<GuardMovePoint>();
        foreach (var s in runtimeClass)
        {
            points.Add(new GuardMovePoint(
                RuntimeClassBench.Method,
                s.SizeMib,
                Seconds(s.Timings, "precheck"),
                Seconds(s.Timings, "checkpoint"),
                s.Seen.TotalSeconds,
                s.Wall.TotalSeconds));
        }
        foreach (var r in rows)
        {
            points.Add(new GuardMovePoint(r.Method, r.SizeMib, 0, r.CheckpointTotal, r.Downtime, r.CheckpointTotal + r.RestoreTotal));
        }
        return points;
    }

    public static IReadOnlyList<GuardMoveRow> Summarize(IReadOnlyList<GuardMovePoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        return [.. points.GroupBy(p => (p.Method, p.SizeMib))
            .OrderBy(g => g.Key.Method, StringComparer.Ordinal).ThenBy(g => g.Key.SizeMib)
            .Select(g => new GuardMoveRow(
                g.Key.Method,
                g.Key.SizeMib,
                g.Count(),
                Median(g.Select(p => p.Precheck)),
                Median(g.Select(p => p.Checkpoint)),
                Median(g.Select(p => p.Capture)),
                Median(g.Select(p => p.Downtime)),
                Median(g.Select(p => p.Wall))))];
    }

    /// <summary>
    /// Per method, the line through its rows' captures against their sizes; none for a method with fewer than two
    /// sizes, or whose capture does not grow with size (a rate would be meaningless).
    /// </summary>
    public static IReadOnlyList<GuardMoveFit> Fit(IReadOnlyList<GuardMoveRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var fits = new List<GuardMoveFit>();
        foreach (var method in rows.GroupBy(r => r.Method).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var list = method.ToList();
            if (list.Select(r => r.SizeMib).Distinct().Count() < 2)
            {
                continue;
            }
            var mx = list.Average(r => (double)r.SizeMib);
            var my = list.Average(r => r.Capture);
            var sxx = list.Sum(r => (r.SizeMib - mx) * (r.SizeMib - mx));
            var sxy = list.Sum(r => (r.SizeMib - mx) * (r.Capture - my));
            var slope = sxy / sxx;
            if (slope <= 0)
            {
                continue;
            }
            fits.Add(new GuardMoveFit(method.Key, list.Select(r => r.SizeMib).Distinct().Count(), Math.Max(0, my - slope * mx), 1 / slope));
        }
        return fits;
    }

    public static void WriteTable(IReadOnlyList<GuardMoveRow> rows, IReadOnlyList<GuardMoveFit> fits, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (rows.Count == 0)
        {
            return;
        }
        output.WriteLine("The figures behind the OOM guard (seconds, median): capture = precheck + checkpoint, the time from the decision until the memory is");
        output.WriteLine("captured (what the guard's move estimate learns from its own migrations); downtime = the workload's pause; move = the whole migration");
        output.WriteLine(string.Join(' ', Cell("MiB", 5), Cell("method", 12), Cell("runs", 4), Cell("precheck", 8), Cell("checkpt", 8), Cell("capture", 8), Cell("MiB/s", 7), Cell("downtime", 8), Cell("move", 7)));
        foreach (var r in rows)
        {
            output.WriteLine(string.Join(' ',
                Cell(r.SizeMib.ToString(CultureInfo.InvariantCulture), 5), Cell(r.Method, 12), Cell(r.Runs.ToString(CultureInfo.InvariantCulture), 4),
                Cell(r.Precheck, 8), Cell(r.Checkpoint, 8), Cell(r.Capture, 8), Cell(r.MibPerSecond.ToString("0.0", CultureInfo.InvariantCulture), 7),
                Cell(r.Downtime, 8), Cell(r.Wall, 7)));
        }
        foreach (var fit in fits)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{fit.Method}: capture ≈ {fit.FixedSeconds:0.00} s + MiB / {fit.MibPerSecond:0.0} MiB/s over {fit.Sizes} sizes (the guard's default without history: {DefaultFixedSeconds:0} s + MiB / {DefaultMibPerSecond:0} MiB/s); at 1024 MiB {fit.EstimateSeconds(1024):0.0} s, default {DefaultFixedSeconds + 1024 / DefaultMibPerSecond:0.0} s"));
        }
    }

    public static void WriteJson(IReadOnlyList<GuardMoveRow> rows, IReadOnlyList<GuardMoveFit> fits, Utf8JsonWriter json)
    {
        ArgumentNullException.ThrowIfNull(json);
        json.WriteStartObject("guard");
        json.WriteStartArray("rows");
        foreach (var r in rows)
        {
            json.WriteStartObject();
            json.WriteString("method", r.Method);
            json.WriteNumber("sizeMib", r.SizeMib);
            json.WriteNumber("runs", r.Runs);
            json.WriteNumber("precheck", Round(r.Precheck));
            json.WriteNumber("checkpoint", Round(r.Checkpoint));
            json.WriteNumber("capture", Round(r.Capture));
            json.WriteNumber("mibPerSecond", Round(r.MibPerSecond));
            json.WriteNumber("downtime", Round(r.Downtime));
            json.WriteNumber("move", Round(r.Wall));
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("fits");
        foreach (var f in fits)
        {
            json.WriteStartObject();
            json.WriteString("method", f.Method);
            json.WriteNumber("sizes", f.Sizes);
            json.WriteNumber("fixedSeconds", Round(f.FixedSeconds));
            json.WriteNumber("mibPerSecond", Round(f.MibPerSecond));
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Seconds(IReadOnlyDictionary<string, TimeSpan> timings, string name)
        => timings.TryGetValue(name, out var value) ? value.TotalSeconds : 0;

    private static double Round(double value) => Math.Round(value, 4);

    private static string Cell(double seconds, int width) => seconds.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(width);

    private static string Cell(string text, int width) => text.PadLeft(width);
}
