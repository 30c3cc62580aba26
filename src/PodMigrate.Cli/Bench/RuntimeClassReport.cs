using System.Globalization;
using System.Text.Json;

namespace PodMigrate.Cli.Bench;

/// <summary>The runtimeclass method's samples as tables (phases, then pause against the floor) or as JSON.</summary>
internal static class RuntimeClassReport
{
    /// <summary>Issue 9 item 8: the workload-seen pause at most this many times the floor (at 1 GiB).</summary>
    public const double Target = 1.3;

    /// <summary>The agents' and the controller's phases, in the order they happen (those present are printed).</summary>
    private static readonly string[] PhaseOrder =
    [
        "checkpoint.freeze", "checkpoint.dump", "checkpoint.pack", "checkpoint.write", "frozen", "checkpoint",
        "prepare.fetch", "prepare.unpack", "prepare", "restore.criu", "restore", "restore.pages",
    ];

    public static void WriteTables(IReadOnlyList<RuntimeClassSample> samples, TextWriter output)
    {
        if (samples.Count == 0)
        {
            return;
        }
        var phases = PhaseOrder.Where(p => samples.Any(s => s.Timings.ContainsKey(p)))
            .Concat(samples.SelectMany(s => s.Timings.Keys).Where(k => !PhaseOrder.Contains(k) && k is not ("total" or "verify" or "precheck")).Distinct().Order(StringComparer.Ordinal))
            .ToList();
        output.WriteLine("RuntimeClass path through the controller (seconds): a PodMigration of a memhog pod, kubectl-equivalent; phases as status.timings reports them");
        output.WriteLine("(checkpoint.* on the source agent, prepare.* on the target agent, restore = clone created → Ready, restore.criu = the runtime's own restore)");
        output.WriteLine(Line([Cell("MiB", 5), Cell("codec/pages", 11), Cell("move", 15), .. phases.Select(p => Cell(p, Math.Max(7, p.Length)))]));
        foreach (var s in samples)
        {
            output.WriteLine(Line([Cell(s.SizeMib, 5), Cell($"{s.Codec}/{s.Pages.ToLowerInvariant()}", 11), Cell(s.Move, 15), .. phases.Select(p => Cell(s.Timings.TryGetValue(p, out var v) ? Seconds(v) : "-", Math.Max(7, p.Length)))]));
        }
        output.WriteLine();
        output.WriteLine("The pause: critical path from the status's instants (source stopped → checkpoint sealed or published → prepared → clone pod created → restored process running);");
        output.WriteLine("durable = source stopped → archive published durably on the share, as the controller saw it (the commit waits for it; off the pause when sealed early);");
        output.WriteLine("reported = status.downtime; seen = memhog's longest heartbeat gap; floor = criu dump to tmpfs + criu restore from tmpfs (same node, same run, no codec);");
        output.WriteLine($"ratio = seen / floor (goal <= {Target.ToString("0.0", CultureInfo.InvariantCulture)} at 1 GiB); honest = reported within 10 % or 100 ms of seen");
        output.WriteLine(Line([
            Cell("MiB", 5), Cell("codec/pages", 11), Cell("move", 15), .. RuntimeClassSample.CriticalPathSteps.Select(p => Cell(p, Math.Max(7, p.Length))),
            Cell("durable", 7), Cell("reported", 8), Cell("seen", 7), Cell("f.dump", 7), Cell("f.rest", 7), Cell("floor", 7), Cell("ratio", 6), Cell("honest", 6), Cell("digest", 6)]));
        foreach (var s in samples)
        {
            output.WriteLine(Line([
                Cell(s.SizeMib, 5), Cell($"{s.Codec}/{s.Pages.ToLowerInvariant()}", 11), Cell(s.Move, 15), .. RuntimeClassSample.CriticalPathSteps.Select(p => Cell(s.CriticalPath.TryGetValue(p, out var v) ? Seconds(v) : "-", Math.Max(7, p.Length))),
                Cell(s.Durable is { } u ? Seconds(u) : "-", 7), Cell(s.Reported is { } r ? Seconds(r) : "-", 8), Cell(Seconds(s.Seen), 7),
                Cell(Seconds(s.Floor.Dump), 7), Cell(Seconds(s.Floor.Restore), 7), Cell(Seconds(s.Floor.Total), 7),
                Cell(s.Ratio.ToString("0.00", CultureInfo.InvariantCulture), 6), Cell(s.Honest ? "ok" : "NO", 6),
                Cell(s.DigestMatches && s.Floor.DigestMatches ? "PASS" : "FAIL", 6)]));
        }
    }

    public static void WriteJson(IReadOnlyList<RuntimeClassSample> samples, Utf8JsonWriter json)
    {
        json.WriteStartArray("runtimeclass");
        foreach (var s in samples)
        {
            json.WriteStartObject();
            json.WriteNumber("sizeMib", s.SizeMib);
            json.WriteNumber("repeat", s.Repeat);
            json.WriteString("restorePages", s.Pages);
            json.WriteString("move", s.Move);
            json.WriteString("codec", s.Codec);
            WriteSeconds(json, "timings", s.Timings);
            WriteSeconds(json, "criticalPath", s.CriticalPath);
            if (s.Durable is { } durable)
            {
                json.WriteNumber("durable", Round(durable));
            }
            if (s.Reported is { } reported)
            {
                json.WriteNumber("reported", Round(reported));
            }
            json.WriteNumber("seen", Round(s.Seen));
            json.WriteNumber("floorDump", Round(s.Floor.Dump));
            json.WriteNumber("floorRestore", Round(s.Floor.Restore));
            json.WriteNumber("floor", Round(s.Floor.Total));
            json.WriteNumber("floorImageMib", Math.Round(s.Floor.ImageBytes / 1048576.0, 1));
            json.WriteNumber("ratio", Math.Round(s.Ratio, 3));
            json.WriteNumber("wall", Round(s.Wall));
            json.WriteBoolean("honest", s.Honest);
            json.WriteBoolean("digestPass", s.DigestMatches);
            json.WriteBoolean("floorDigestPass", s.Floor.DigestMatches);
            json.WriteEndObject();
        }
        json.WriteEndArray();
    }

    private static void WriteSeconds(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, TimeSpan> values)
    {
        json.WriteStartObject(name);
        foreach (var (key, value) in values)
        {
            json.WriteNumber(key, Round(value));
        }
        json.WriteEndObject();
    }

    private static double Round(TimeSpan value) => Math.Round(value.TotalSeconds, 4);

    private static string Seconds(TimeSpan value) => value.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture);

    private static string Cell(int value, int width) => value.ToString(CultureInfo.InvariantCulture).PadLeft(width);

    private static string Cell(string text, int width) => text.PadLeft(width);

    private static string Line(IEnumerable<string> cells) => string.Join(' ', cells);
}
