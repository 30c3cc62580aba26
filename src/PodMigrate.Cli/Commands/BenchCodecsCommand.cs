using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// <c>podmigrate bench codecs</c>: our codecs against the command-line tools on the same data in the same run
/// (zstd -T0, gzip, pigz), both reading and writing files in the same work directory (tmpfs by default).
/// </summary>
internal static class BenchCodecsCommand
{
    private const double MiB = 1 << 20;
    private const int BufferSize = 1 << 20;

    public static Command Create()
    {
        var command = new Command("bench", "Measure PodMigrate's building blocks against the reference tools");
        command.Subcommands.Add(CreateCodecs());
        return command;
    }

    private static Command CreateCodecs()
    {
        var input = new Option<string>("--input") { Description = "A directory (tarred first, like a checkpoint) or a file", Required = true };
        var codecs = new Option<string>("--codec") { Description = "Codecs to measure, comma-separated", DefaultValueFactory = _ => "zstd,gzip,none" };
        var level = new Option<int?>("--level") { Description = "Compression level (default: each codec's default, 1 for zstd and gzip)" };
        var workDir = new Option<string?>("--work-dir") { Description = "Where compressed and decompressed copies go (default /dev/shm)" };
        var output = CliCommon.OutputOption();
        var command = new Command("codecs", "Compress and decompress the same data with our codecs and with zstd -T0 / gzip / pigz; print MiB/s and ratios");
        foreach (var option in new Option[] { input, codecs, level, workDir, output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var settings = parse.GetValue(codecs)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(name => CheckpointCodecs.Resolve(name, name == CheckpointCodecs.NoneName ? null : parse.GetValue(level)))
                .ToList();
            var rows = await RunAsync(parse.GetValue(input)!, settings, parse.GetValue(workDir), cancellationToken);
            if (parse.IsJson(output))
            {
                WriteJson(rows);
            }
            else
            {
                WriteTable(rows);
            }

            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }

    private sealed record Row(string Codec, int Level, string Implementation, long InputBytes, long CompressedBytes, double CompressSeconds, double DecompressSeconds)
    {
        public double CompressMiBps => InputBytes / MiB / CompressSeconds;

        public double DecompressMiBps => InputBytes / MiB / DecompressSeconds;

        public double Ratio => (double)InputBytes / CompressedBytes;

        /// <summary>Our speed over the CLI's (compress, decompress) when this row is a CLI one.</summary>
        public (double Compress, double Decompress)? OursOverCli { get; init; }
    }

    private static async Task<List<Row>> RunAsync(string input, IReadOnlyList<CodecSettings> settings, string? workDir, CancellationToken cancellationToken)
    {
        var root = workDir ?? (Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath());
        var work = Path.Combine(root, $"podmigrate-bench-{Guid.NewGuid():N}");
        DurableFileSystem.CreatePrivateDirectory(work);
        try
        {
            var data = input;
            if (Directory.Exists(input))
            {
                data = Path.Combine(work, "input.tar");
                await using var tar = DurableFileSystem.CreatePrivateFile(data, bufferSize: BufferSize);
                await CheckpointArchiveWriter.WriteAsync(input, tar, new CodecSettings(CheckpointCodecs.NoneName, 0), null, cancellationToken);
            }
            else if (!File.Exists(input))
            {
                throw PodMigrateException.NotFound($"input {input} does not exist");
            }

            var rows = new List<Row>();
            foreach (var codec in settings)
            {
                var ours = await MeasureOursAsync(data, work, codec, cancellationToken);
                rows.Add(ours);
                foreach (var tool in CliTools(codec))
                {
                    var cli = await MeasureCliAsync(data, work, codec, tool, cancellationToken);
                    rows.Add(cli with { OursOverCli = (ours.CompressMiBps / cli.CompressMiBps, ours.DecompressMiBps / cli.DecompressMiBps) });
                }
            }

            return rows;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static IEnumerable<string> CliTools(CodecSettings codec) => codec.Name switch
    {
        CheckpointCodecs.ZstdName => ["zstd"],
        CheckpointCodecs.GzipName when codec.Level > 0 => ["gzip", "pigz"],
        _ => [],
    };

    private static async Task<Row> MeasureOursAsync(string data, string work, CodecSettings settings, CancellationToken cancellationToken)
    {
        var codec = CheckpointCodecs.Get(settings.Name);
        var compressed = Path.Combine(work, "ours" + codec.ArchiveExtension);
        var restored = Path.Combine(work, "ours.out");
        var watch = Stopwatch.StartNew();
        await using (var source = DurableFileSystem.OpenSequentialRead(data, BufferSize))
        await using (var target = DurableFileSystem.CreatePrivateFile(compressed, bufferSize: BufferSize))
        await using (var compressor = codec.CreateCompressor(target, settings.Level, leaveOpen: true))
        {
            await source.CopyToAsync(compressor, BufferSize, cancellationToken);
        }

        var compressSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        await using (var source = DurableFileSystem.OpenSequentialRead(compressed, BufferSize))
        await using (var decompressor = codec.CreateDecompressor(source, leaveOpen: true))
        await using (var target = DurableFileSystem.CreatePrivateFile(restored, bufferSize: BufferSize))
        {
            await decompressor.CopyToAsync(target, BufferSize, cancellationToken);
        }

        var decompressSeconds = watch.Elapsed.TotalSeconds;
        var row = new Row(settings.Name, settings.Level, "podmigrate", new FileInfo(data).Length, new FileInfo(compressed).Length, compressSeconds, decompressSeconds);
        EnsureSameLength(data, restored, row.Implementation);
        File.Delete(compressed);
        File.Delete(restored);
        return row;
    }

    private static async Task<Row> MeasureCliAsync(string data, string work, CodecSettings settings, string tool, CancellationToken cancellationToken)
    {
        var level = "-" + settings.Level.ToString(CultureInfo.InvariantCulture);
        var compressed = Path.Combine(work, $"cli-{tool}.tar.{(tool == "zstd" ? "zst" : "gz")}");
        var restored = Path.Combine(work, $"cli-{tool}.tar");
        var timeout = TimeSpan.FromMinutes(30);
        var compress = tool == "zstd"
            ? new ProcessSpec("zstd", ["-T0", level, "-q", "-f", data, "-o", compressed]) { Timeout = timeout }
            // gzip and pigz write <input><suffix> beside the input: the suffix makes it the name wanted here.
            : new ProcessSpec(tool, [level, "-k", "-f", "-q", "-S", Path.GetFileName(compressed), data]) { Timeout = timeout };
        var watch = Stopwatch.StartNew();
        await ProcessRunner.RunCheckedAsync(compress, cancellationToken);
        var compressSeconds = watch.Elapsed.TotalSeconds;
        if (tool != "zstd")
        {
            File.Move(data + Path.GetFileName(compressed), compressed, overwrite: true);
        }

        var decompress = tool == "zstd"
            ? new ProcessSpec("zstd", ["-d", "-q", "-f", compressed, "-o", restored]) { Timeout = timeout }
            : new ProcessSpec(tool, ["-d", "-k", "-f", "-q", compressed]) { Timeout = timeout };
        watch.Restart();
        await ProcessRunner.RunCheckedAsync(decompress, cancellationToken);
        var decompressSeconds = watch.Elapsed.TotalSeconds;
        var name = tool == "zstd" ? $"zstd -T0 {level}" : $"{tool} {level}";
        var row = new Row(settings.Name, settings.Level, name, new FileInfo(data).Length, new FileInfo(compressed).Length, compressSeconds, decompressSeconds);
        EnsureSameLength(data, restored, name);
        File.Delete(compressed);
        File.Delete(restored);
        return row;
    }

    private static void EnsureSameLength(string data, string restored, string implementation)
    {
        if (new FileInfo(restored).Length != new FileInfo(data).Length)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{implementation}: the round trip did not give back {new FileInfo(data).Length} bytes");
        }
    }

    private static void WriteTable(List<Row> rows)
    {
        if (rows.Count > 0)
        {
            Console.WriteLine($"input: {rows[0].InputBytes / MiB:0.0} MiB");
        }

        Console.WriteLine($"{"codec",-6} {"lvl",3} {"implementation",-16} {"compress MiB/s",14} {"decompress MiB/s",16} {"ratio",8} {"ours/cli comp",13} {"ours/cli decomp",15}");
        foreach (var row in rows)
        {
            var versus = row.OursOverCli is { } r ? $"{r.Compress,13:0.00} {r.Decompress,15:0.00}" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{row.Codec,-6} {row.Level,3} {row.Implementation,-16} {row.CompressMiBps,14:0} {row.DecompressMiBps,16:0} {row.Ratio,8:0.00} {versus}"));
        }
    }

    private static void WriteJson(List<Row> rows)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var row in rows)
            {
                json.WriteStartObject();
                json.WriteString("codec", row.Codec);
                json.WriteNumber("level", row.Level);
                json.WriteString("implementation", row.Implementation);
                json.WriteNumber("inputBytes", row.InputBytes);
                json.WriteNumber("compressedBytes", row.CompressedBytes);
                json.WriteNumber("compressMiBps", Math.Round(row.CompressMiBps, 1));
                json.WriteNumber("decompressMiBps", Math.Round(row.DecompressMiBps, 1));
                json.WriteNumber("ratio", Math.Round(row.Ratio, 3));
                if (row.OursOverCli is { } r)
                {
                    json.WriteNumber("oursOverCliCompress", Math.Round(r.Compress, 3));
                    json.WriteNumber("oursOverCliDecompress", Math.Round(r.Decompress, 3));
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        stdout.WriteByte((byte)'\n');
    }
}
