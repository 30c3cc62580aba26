using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tls;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// <c>podmigrate bench share</c>: the checkpoint store on several shares side by side (a local directory, an SMB share
/// through two nodes' mounts): publish at the writer's path, full verification (read, decompress, every digest) at the
/// reader's path, delete; repeated, best and median printed.
/// </summary>
internal static class BenchShareCommand
{
    private const double MiB = 1 << 20;

    public static Command AddTo(Command bench)
    {
        var input = new Option<string>("--input") { Description = "A staged checkpoint directory (e.g. a CRIU image dir) to publish", Required = true };
        var shares = new Option<string[]>("--share")
        {
            Description = "NAME=WRITE_PATH[:READ_PATH], repeatable: where one node publishes and (default the same path) where another reads",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var codec = new Option<string>("--codec") { Description = "Archive codec", DefaultValueFactory = _ => CheckpointCodecs.ZstdName };
        var repeat = new Option<int>("--repeat") { Description = "Runs per share", DefaultValueFactory = _ => 3 };
        var command = new Command("share", "Publish and verify the same checkpoint on several shares (local directory, SMB); print seconds and MiB/s side by side");
        foreach (var option in new Option[] { input, shares, codec, repeat })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var settings = CheckpointCodecs.Resolve(parse.GetValue(codec)!, null);
            var source = parse.GetValue(input)!;
            if (!Directory.Exists(source))
            {
                throw PodMigrateException.NotFound($"input {source} is not a directory");
            }

            var raw = new DirectoryInfo(source).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"input: {raw / MiB:0.0} MiB, codec {settings.Name}, {parse.GetValue(repeat)} runs per share (best / median)"));
            Console.WriteLine($"{"share",-8} {"publish s",18} {"publish MiB/s",14} {"verify s",18} {"verify MiB/s",13} {"read-back",9}");
            foreach (var spec in parse.GetValue(shares)!)
            {
                var (name, write, read) = Parse(spec);
                var (publish, verify, readBack) = await MeasureAsync(source, write, read, settings, parse.GetValue(repeat), cancellationToken);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name,-8} {publish.Min(),8:0.000} / {Median(publish),7:0.000} {raw / MiB / publish.Min(),14:0} {verify.Min(),8:0.000} / {Median(verify),7:0.000} {raw / MiB / verify.Min(),13:0} {(readBack ? "yes" : "no"),9}"));
            }

            return ExitCodes.Ok;
        }, cancellationToken));
        bench.Subcommands.Add(command);
        return bench;
    }

    private static (string Name, string Write, string Read) Parse(string spec)
    {
        var eq = spec.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0)
        {
            throw PodMigrateException.InvalidArgument($"--share {spec}: use NAME=WRITE_PATH[:READ_PATH]");
        }

        var paths = spec[(eq + 1)..].Split(':', 2);
        return (spec[..eq], paths[0], paths.Length > 1 ? paths[1] : paths[0]);
    }

    private static async Task<(List<double> Publish, List<double> Verify, bool ReadBack)> MeasureAsync(
        string source, string write, string read, CodecSettings codec, int repeat, CancellationToken cancellationToken)
    {
        var time = TimeProvider.System;
        var writer = new FileSystemCheckpointStore(new FileSystemCheckpointStoreOptions { Root = write, WriterName = "bench-writer", Signatures = CheckpointSignatures.UnsignedForDevelopment(time) }, time);
        var reader = new FileSystemCheckpointStore(new FileSystemCheckpointStoreOptions { Root = read, WriterName = "bench-reader", Signatures = CheckpointSignatures.UnsignedForDevelopment(time) }, time);
        var (publish, verify) = (new List<double>(), new List<double>());
        for (var i = 0; i < Math.Max(1, repeat); i++)
        {
            var id = CheckpointId.New(time);
            var clock = Stopwatch.StartNew();
            await writer.PublishAsync(new CheckpointPublishRequest { Id = id, SourceDirectory = source, Codec = codec, SourceNode = "bench" }, null, cancellationToken);
            publish.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            await reader.VerifyAsync(id, cancellationToken);
            verify.Add(clock.Elapsed.TotalSeconds);
            await reader.DeleteAsync(id, force: true, cancellationToken);
        }

        return (publish, verify, Core.IO.DurableFileSystem.IsRemoteFileSystem(writer.CheckpointsDirectory));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
