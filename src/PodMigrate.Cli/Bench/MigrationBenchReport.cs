using System.Globalization;
using System.Text.Json;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// One row of the report: the medians over the repeats of one size, one codec and one restore method (the checkpoint
/// columns are the same for every method of a size and codec: each of their checkpoints was restored with each).
/// </summary>
internal sealed record MigrationBenchRow(
    int SizeMib,
    string Codec,
    string Method,
    int Runs,
    IReadOnlyDictionary<string, double> CheckpointPhases,
    double CheckpointTotal,
    double Frozen,
    double Downtime,
    double RawMib,
    double ArchiveMib,
    double FloorDump,
    double FloorTar,
    double FloorCompress,
    double FloorCompressedMib,
    IReadOnlyDictionary<string, double> RestorePhases,
    double RestoreTotal,
    double FloorDecompress,
    double FloorUntar,
    double FloorRestore,
    bool DigestPass,
    bool FloorDigestPass)
{
    public double FloorCheckpointTotal => FloorDump + FloorCompress;

    public double FloorRestoreTotal => FloorDecompress + FloorRestore;

    public double CheckpointRatio => CheckpointTotal / FloorCheckpointTotal;

    public double RestoreRatio => RestoreTotal / FloorRestoreTotal;
}

/// <summary>Medians of the samples, printed as two tables (checkpoint, restore) or written as JSON.</summary>
internal static class MigrationBenchReport
{
    public const double Target = 1.25;
    private const double MiB = 1 << 20;

    public static IReadOnlyList<MigrationBenchRow> Summarize(IReadOnlyList<MigrationSample> samples)
        => [.. samples.GroupBy(s => s.SizeMib).SelectMany(size => size
            .SelectMany(s => s.Ours.SelectMany(o => o.Restores.Select(r => (Sample: s, Ours: o, Restore: r))))
            .GroupBy(x => (x.Ours.Codec, x.Restore.Method))
            .Select(g => new MigrationBenchRow(
                size.Key,
                g.Key.Codec,
                g.Key.Method,
                g.Count(),
                Phases(g.Select(x => x.Ours.CheckpointPhases)),
                Median(g.Select(x => x.Ours.CheckpointTotal.TotalSeconds)),
                Median(g.Select(x => x.Ours.Frozen.TotalSeconds)),
                Median(g.Select(x => x.Restore.Downtime.TotalSeconds)),
                Median(g.Select(x => x.Ours.RawBytes / MiB)),
                Median(g.Select(x => x.Ours.ArchiveBytes / MiB)),
                Median(g.Select(x => x.Sample.FloorDump.Dump.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorDump.Tar.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorDump.Compress.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorDump.CompressedBytes / MiB)),
                Phases(g.Select(x => x.Restore.Phases)),
                Median(g.Select(x => x.Restore.Total.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorRestore.Decompress.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorRestore.Untar.TotalSeconds)),
                Median(g.Select(x => x.Sample.FloorRestore.Restore.TotalSeconds)),
                g.All(x => x.Restore.DigestMatches),
                g.All(x => x.Sample.FloorDigestMatches))))];

    public static void WriteTables(IReadOnlyList<MigrationBenchRow> rows, TextWriter output)
    {
        var checkpointPhases = rows.SelectMany(r => r.CheckpointPhases.Keys).Distinct().ToList();
        var restorePhases = rows.SelectMany(r => r.RestorePhases.Keys).Distinct().ToList();
        output.WriteLine("Checkpoint (seconds, median): ours = agent checkpoint to the published archive on the share;");
        output.WriteLine("floor = containerd Tasks.Checkpoint (CRIU dump, image_path on tmpfs) + zstd -T0 -1 of a tar of the images");
        output.WriteLine(Line([
            Cell("MiB", 5), Cell("codec", 5), .. checkpointPhases.Select(p => Cell(p, 8)),
            Cell("ours", 7), Cell("frozen", 7), Cell("arch MiB", 8),
            Cell("f.dump", 7), Cell("f.zstd", 7), Cell("floor", 7), Cell("ratio", 6), Cell("", 4)]));
        foreach (var r in rows.DistinctBy(r => (r.SizeMib, r.Codec)))
        {
            output.WriteLine(Line([
                Cell(r.SizeMib, 5), Cell(r.Codec, 5), .. checkpointPhases.Select(p => Cell(r.CheckpointPhases.GetValueOrDefault(p), 8)),
                Cell(r.CheckpointTotal, 7), Cell(r.Frozen, 7), Cell(r.ArchiveMib.ToString("0.0", CultureInfo.InvariantCulture), 8),
                Cell(r.FloorDump, 7), Cell(r.FloorCompress, 7), Cell(r.FloorCheckpointTotal, 7), Cell(r.CheckpointRatio.ToString("0.00", CultureInfo.InvariantCulture), 6),
                Cell(r.CheckpointRatio <= Target ? "ok" : ">1.25", 4)]));
        }
        output.WriteLine();
        output.WriteLine("Restore (seconds, median): ours = agent restore on the target of the same checkpoint with each method: cri-image (imported as an OCI image into");
        output.WriteLine("containerd, then run as a pod through CRI), direct (Tasks API: new snapshot + rootfs diff, runc restore from the staged checkpoint, a bare container);");
        output.WriteLine("downtm = frozen + that restore (leave-stopped) or frozen (leave-running);");
        output.WriteLine("floor = zstd -d + CRIU restore (Tasks.Create with criu_image_path + Start) into the source container; digest = restored memory's FNV-1a 64 equals the source's");
        output.WriteLine(Line([
            Cell("MiB", 5), Cell("codec", 5), Cell("method", 9), .. restorePhases.Select(p => Cell(p, 8)),
            Cell("ours", 7), Cell("downtm", 7), Cell("f.zstd-d", 8), Cell("f.restore", 9), Cell("floor", 7), Cell("ratio", 6), Cell("", 5), Cell("digest", 6), Cell("floor digest", 12)]));
        foreach (var r in rows)
        {
            output.WriteLine(Line([
                Cell(r.SizeMib, 5), Cell(r.Codec, 5), Cell(r.Method, 9), .. restorePhases.Select(p => Cell(r.RestorePhases.GetValueOrDefault(p), 8)),
                Cell(r.RestoreTotal, 7), Cell(r.Downtime, 7), Cell(r.FloorDecompress, 8), Cell(r.FloorRestore, 9), Cell(r.FloorRestoreTotal, 7),
                Cell(r.RestoreRatio.ToString("0.00", CultureInfo.InvariantCulture), 6), Cell(r.RestoreRatio <= Target ? "ok" : ">1.25", 5),
                Cell(r.DigestPass ? "PASS" : "FAIL", 6), Cell(r.FloorDigestPass ? "PASS" : "FAIL", 12)]));
        }
    }

    public static void WriteJson(MigrationBenchOptions options, IReadOnlyList<MigrationBenchRow> rows, IReadOnlyList<MigrationSample> samples, IReadOnlyList<RuntimeClassSample> runtimeClass,
        IReadOnlyList<GuardMoveRow> guardRows, IReadOnlyList<GuardMoveFit> guardFits, Stream output)
    {
        using var json = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("from", options.From);
        json.WriteString("to", options.To);
        json.WriteString("image", options.Image);
        json.WriteString("disposition", options.Disposition.ToString());
        json.WriteNumber("repeat", options.Repeat);
        json.WriteString("pattern", options.Pattern);
        json.WriteNumber("prefaultFactor", options.PrefaultFactor);
        json.WriteStartArray("methods");
        foreach (var method in options.Methods)
        {
            json.WriteStringValue(Commands.RestoreTargetOptions.MethodName(method));
        }
        json.WriteEndArray();
        json.WriteString("floor", "containerd Tasks.Checkpoint to tmpfs + zstd -T0 -1; zstd -d + Tasks.Create(criu_image_path)+Start into the source container");
        json.WriteNumber("target", Target);
        json.WriteStartArray("rows");
        foreach (var r in rows)
        {
            json.WriteStartObject();
            json.WriteNumber("sizeMib", r.SizeMib);
            json.WriteString("codec", r.Codec);
            json.WriteString("method", r.Method);
            json.WriteNumber("runs", r.Runs);
            WriteSeconds(json, "checkpointPhases", r.CheckpointPhases);
            json.WriteNumber("checkpointTotal", Round(r.CheckpointTotal));
            json.WriteNumber("frozen", Round(r.Frozen));
            json.WriteNumber("downtime", Round(r.Downtime));
            json.WriteNumber("rawMib", Round(r.RawMib));
            json.WriteNumber("archiveMib", Round(r.ArchiveMib));
            json.WriteNumber("floorDump", Round(r.FloorDump));
            json.WriteNumber("floorTar", Round(r.FloorTar));
            json.WriteNumber("floorCompress", Round(r.FloorCompress));
            json.WriteNumber("floorCompressedMib", Round(r.FloorCompressedMib));
            json.WriteNumber("floorCheckpointTotal", Round(r.FloorCheckpointTotal));
            json.WriteNumber("checkpointRatio", Round(r.CheckpointRatio));
            WriteSeconds(json, "restorePhases", r.RestorePhases);
            json.WriteNumber("restoreTotal", Round(r.RestoreTotal));
            json.WriteNumber("floorDecompress", Round(r.FloorDecompress));
            json.WriteNumber("floorUntar", Round(r.FloorUntar));
            json.WriteNumber("floorRestore", Round(r.FloorRestore));
            json.WriteNumber("floorRestoreTotal", Round(r.FloorRestoreTotal));
            json.WriteNumber("restoreRatio", Round(r.RestoreRatio));
            json.WriteBoolean("digestPass", r.DigestPass);
            json.WriteBoolean("floorDigestPass", r.FloorDigestPass);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("samples", samples.Count);
        RuntimeClassReport.WriteJson(runtimeClass, json);
        GuardFigures.WriteJson(guardRows, guardFits, json);
        json.WriteEndObject();
    }

    private static void WriteSeconds(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, double> phases)
    {
        json.WriteStartObject(name);
        foreach (var (phase, seconds) in phases)
        {
            json.WriteNumber(phase, Round(seconds));
        }
        json.WriteEndObject();
    }

    private static Dictionary<string, double> Phases(IEnumerable<IReadOnlyDictionary<string, TimeSpan>> runs)
    {
        var list = runs.ToList();
        return list.SelectMany(r => r.Keys).Distinct().ToDictionary(p => p, p => Median(list.Select(r => r.GetValueOrDefault(p).TotalSeconds)));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static double Round(double value) => Math.Round(value, 4);

    private static string Cell(double seconds, int width) => seconds.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(width);

    private static string Cell(int value, int width) => value.ToString(CultureInfo.InvariantCulture).PadLeft(width);

    private static string Cell(string text, int width) => text.PadLeft(width);

    private static string Line(IEnumerable<string> cells) => string.Join(' ', cells);
}
