using System.CommandLine;
using System.Globalization;
using PodMigrate.Agent.V1;
using PodMigrate.Cli.Bench;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// <c>podmigrate bench migration</c>: for each memory size, a memhog pod on --from; in the same run on that pod, the
/// raw floor (CRIU dump through containerd to tmpfs + zstd -T0 -1; zstd -d + CRIU restore) and ours (agent checkpoint
/// to the share, agent restores of it on --to with each of --methods), with the ratios ours/floor and a digest check of the restored memory.
/// </summary>
internal static class BenchMigrationCommand
{
    /// <summary>Adds `migration` to the `bench` verb (whose `codecs` subcommand lives in BenchCodecsCommand).</summary>
    public static Command AddTo(Command bench)
    {
        bench.Subcommands.Add(Create());
        return bench;
    }

    private static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "Memory sizes in MiB, comma-separated", DefaultValueFactory = _ => "64,256,1024,2048" };
        var codecs = new Option<string>("--codecs") { Description = "Our archive codecs to measure, comma-separated (zstd, gzip, none)", DefaultValueFactory = _ => "zstd" };
        var methods = new Option<string>("--methods") { Description = "Methods to measure, comma-separated: cri-image, direct (agent restores of each checkpoint), runtimeclass (a PodMigration through the controller and the RuntimeClass, against the uncompressed CRIU floor)", DefaultValueFactory = _ => "cri-image,direct" };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "runtimeclass: the API server's kubeconfig (default: the local cluster's, $PODMIGRATE_RUN_DIR/kubeconfig)" };
        var from = new Option<string>("--from") { Description = "Source node", DefaultValueFactory = _ => "node-a" };
        var to = new Option<string>("--to") { Description = "Target node", DefaultValueFactory = _ => "node-b" };
        var image = new Option<string>("--image") { Description = "The memhog image", DefaultValueFactory = _ => "localhost:5000/podmigrate/memhog:1" };
        var disposition = new Option<string>("--source") { Description = "What our checkpoint does with the source: leave-stopped (a migration) or leave-running", DefaultValueFactory = _ => "leave-stopped" }
            .AcceptOnlyFromAmong("leave-stopped", "leave-running");
        var repeat = new Option<int>("--repeat") { Description = "Runs per size; the table shows medians", DefaultValueFactory = _ => 1 };
        var targetState = new Option<string?>("--target-state-dir") { Description = "The target agent's --state-dir, where a direct restore keeps its container's files (default: the local cluster's, <state>/nodes/<to>/agent)" };
        var workDir = new Option<string>("--work-dir") { Description = "tmpfs for the floor's CRIU images and archives", DefaultValueFactory = _ => "/dev/shm" };
        var pattern = new Option<string>("--pattern")
        {
            Description = "memhog's memory: random (incompressible, the worst case for a codec) or text (JSON log lines, compressible like most heaps)",
            DefaultValueFactory = _ => "random",
        };
        pattern.AcceptOnlyFromAmong("random", "text");
        var prefault = new Option<int>("--prefault")
        {
            Description = "Before each measured step (ours and the floor's alike), touch and free this many times the workload's size, so that the step gets memory the VM has backed; 0 turns it off",
            DefaultValueFactory = _ => 4,
        };
        var jsonOut = new Option<string?>("--json-out") { Description = "Also write the JSON report to this file (for scripts that want the table and the data of one run)" };
        var plots = new Option<string?>("--plots")
        {
            Description = $"Also write PNG plots into this directory: {BenchPlotWriter.DowntimeFile} (downtime versus memory size) and {BenchPlotWriter.PhasesFile} (the share of each phase of a move)",
        };
        var restorePages = new Option<string>("--restore-pages")
        {
            Description = "runtimeclass: spec.restorePages of the PodMigrations, comma-separated: Lazy (post-copy from the target's staging, the default), Eager",
            DefaultValueFactory = _ => "Lazy",
        };
        var andBack = new Option<bool>("--and-back") { Description = "runtimeclass: after each move, move the clone back (--to to --from) the same way, measured and digest-checked too" };
        var output = CliCommon.OutputOption();
        var command = new Command("migration", "Checkpoint and restore a memhog pod with the agents and with raw CRIU + zstd, side by side; print phase times and ratios");
        foreach (var option in new Option[] { sizes, codecs, methods, kubeconfig, from, to, image, disposition, repeat, targetState, workDir, pattern, prefault, jsonOut, plots, restorePages, andBack, output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var json = parse.IsJson(output);
            var (agentMethods, runtimeClass) = SplitMethods(parse.GetValue(methods)!);
            var options = new MigrationBenchOptions(
                ParseSizes(parse.GetValue(sizes)!),
                ParseCodecs(parse.GetValue(codecs)!),
                agentMethods,
                parse.GetValue(from)!,
                parse.GetValue(to)!,
                parse.GetValue(image)!,
                parse.GetValue(disposition) == "leave-running" ? SourceDisposition.SourceLeaveRunning : SourceDisposition.SourceLeaveStopped,
                parse.GetValue(repeat),
                parse.GetValue(workDir)!,
                CliCommon.RunDirectory,
                parse.GetValue(targetState) ?? CliCommon.NodeAgentStateDirectory(parse.GetValue(to)!),
                parse.GetValue(prefault),
                parse.GetValue(pattern)!,
                ParseRestorePages(parse.GetValue(restorePages)!),
                parse.GetValue(andBack));
            if (options.PrefaultFactor < 0)
            {
                throw PodMigrateException.InvalidArgument($"--prefault must not be negative, not {options.PrefaultFactor}");
            }
            if (options.Repeat < 1)
            {
                throw PodMigrateException.InvalidArgument($"--repeat must be at least 1, not {options.Repeat}");
            }
            if (options.From == options.To)
            {
                throw PodMigrateException.InvalidArgument($"--from and --to are both {options.From}");
            }
            if (options.Methods.Contains(RestoreMethod.RestoreDirect) && !Directory.Exists(options.TargetStateDirectory))
            {
                // A direct restore's container files live there; removing them from elsewhere would leave them behind.
                throw PodMigrateException.NotFound($"the target agent's state directory {options.TargetStateDirectory} does not exist (--target-state-dir)");
            }
            if (!Directory.Exists(options.WorkRoot))
            {
                throw PodMigrateException.NotFound($"--work-dir {options.WorkRoot} does not exist");
            }

            // Progress goes to stderr so that -o json keeps stdout clean.
            IReadOnlyList<MigrationSample> samples = [];
            if (options.Methods.Count > 0)
            {
                // The agent methods measure the local cluster through the agents' unix sockets.
                using var source = CliCommon.ConnectAgent(options.From, null, AgentTls.None);
                using var target = CliCommon.ConnectAgent(options.To, null, AgentTls.None);
                var bench = new MigrationBench(options, source, target, line => Console.Error.WriteLine(line));
                samples = await bench.RunAsync(cancellationToken);
            }
            IReadOnlyList<RuntimeClassSample> runtimeClassSamples = [];
            if (runtimeClass)
            {
                var config = await CliHosting.LoadKubeConfigAsync(parse.GetValue(kubeconfig) ?? Path.Combine(CliCommon.RunDirectory, "kubeconfig"), cancellationToken);
                using var api = new Kube.Client.KubernetesApiClient(config);
                runtimeClassSamples = await new RuntimeClassBench(options, api, line => Console.Error.WriteLine(line)).RunAsync(cancellationToken);
            }
            var rows = MigrationBenchReport.Summarize(samples);
            var guardRows = GuardFigures.Summarize(GuardFigures.Points(rows, runtimeClassSamples));
            var guardFits = GuardFigures.Fit(guardRows);
            if (parse.GetValue(jsonOut) is { Length: > 0 } jsonPath)
            {
                await using var file = File.Create(jsonPath);
                MigrationBenchReport.WriteJson(options, rows, samples, runtimeClassSamples, guardRows, guardFits, file);
            }
            if (parse.GetValue(plots) is { Length: > 0 } plotDirectory)
            {
                var title = string.Create(CultureInfo.InvariantCulture, $"{options.Pattern} memory, {options.From} → {options.To}, median of {options.Repeat}");
                foreach (var path in BenchPlotWriter.Write(BenchPlotData.From(rows, runtimeClassSamples), plotDirectory, title))
                {
                    Console.Error.WriteLine($"plot: {path}");
                }
            }
            if (json)
            {
                using var stdout = Console.OpenStandardOutput();
                MigrationBenchReport.WriteJson(options, rows, samples, runtimeClassSamples, guardRows, guardFits, stdout);
                stdout.WriteByte((byte)'\n');
            }
            else
            {
                if (rows.Count > 0)
                {
                    MigrationBenchReport.WriteTables(rows, Console.Out);
                    Console.Out.WriteLine();
                }
                RuntimeClassReport.WriteTables(runtimeClassSamples, Console.Out);
                Console.Out.WriteLine();
                GuardFigures.WriteTable(guardRows, guardFits, Console.Out);
            }
            return rows.All(r => r.DigestPass && r.FloorDigestPass) && runtimeClassSamples.All(s => s.DigestMatches && s.Floor.DigestMatches) ? ExitCodes.Ok : ExitCodes.DataLoss;
        }, cancellationToken));
        return command;
    }

    private static List<int> ParseSizes(string text)
    {
        var sizes = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var mib) || mib < 1 || mib > 65536)
            {
                throw PodMigrateException.InvalidArgument($"--sizes: '{part}' is not a size in MiB (1..65536)");
            }
            sizes.Add(mib);
        }
        return sizes.Count > 0 ? sizes : throw PodMigrateException.InvalidArgument("--sizes names no size");
    }

    private static List<string> ParseRestorePages(string text)
    {
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(v => v.ToLowerInvariant() switch
            {
                "lazy" => Controller.Migrations.MigrationRestorePages.Lazy,
                "eager" => Controller.Migrations.MigrationRestorePages.Eager,
                _ => throw PodMigrateException.InvalidArgument($"--restore-pages: '{v}' is not Lazy or Eager"),
            }).Distinct().ToList();
        return values.Count > 0 ? values : throw PodMigrateException.InvalidArgument("--restore-pages names nothing");
    }

    private static List<string> ParseCodecs(string text)
    {
        var codecs = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var codec in codecs)
        {
            CheckpointCommand.ParseCodec(codec);
        }
        return codecs.Count > 0 ? codecs : throw PodMigrateException.InvalidArgument("--codecs names no codec");
    }

    /// <summary>The agent restore methods, and whether the runtimeclass method (through the controller) was asked for.</summary>
    private static (List<RestoreMethod> Agent, bool RuntimeClass) SplitMethods(string text)
    {
        var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        var runtimeClass = names.RemoveAll(n => n == RuntimeClassBench.Method) > 0;
        var methods = names.Select(RestoreTargetOptions.ParseMethod).Distinct().ToList();
        return methods.Count > 0 || runtimeClass ? (methods, runtimeClass) : throw PodMigrateException.InvalidArgument("--methods names no method");
    }
}
