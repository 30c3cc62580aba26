using System.CommandLine;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate checkpoint`: checkpoint one container on a node into a new archive on the share.</summary>
internal static class CheckpointCommand
{
    public static Command Create()
    {
        var node = new Option<string?>("--node") { Description = "Node whose agent checkpoints (local cluster)" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var selector = new ContainerSelectorOptions();
        var codec = new Option<string>("--codec") { Description = "Archive codec", DefaultValueFactory = _ => "zstd" }.AcceptOnlyFromAmong("zstd", "gzip", "none");
        var level = new Option<int>("--level") { Description = "Codec level (0: the codec's default)" };
        var leaveRunning = new Option<bool>("--leave-running") { Description = "Resume the source right after the dump (default)" };
        var stop = new Option<bool>("--stop") { Description = "Kill the source once the checkpoint is published" };
        var leaveStopped = new Option<bool>("--leave-stopped") { Description = "Keep the source frozen until `podmigrate resume` or `discard`" };
        var tcp = new Option<bool>("--tcp-established") { Description = "Checkpoint established TCP connections" };
        var fileLocks = new Option<bool>("--file-locks") { Description = "Checkpoint file locks" };
        var pin = new Option<bool>("--pin") { Description = "Exempt the checkpoint from retention" };
        var id = new Option<string?>("--id") { Description = "Checkpoint id (default: generated); never overwrites" };
        var timeout = new Option<TimeSpan?>("--timeout") { Description = "Bound for the whole checkpoint (e.g. 00:05:00)" };
        var labels = new Option<string[]>("--label") { Description = "KEY=VALUE stored in the manifest", AllowMultipleArgumentsPerToken = false };
        var output = CliCommon.OutputOption();

        var command = new Command("checkpoint", "Checkpoint a running container into an archive on the shared storage")
        {
            node, agent, codec, level, leaveRunning, stop, leaveStopped, tcp, fileLocks, pin, id, timeout, labels, output,
        };
        selector.AddTo(command);
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            var request = new CheckpointRequest
            {
                Container = selector.Read(parse),
                Disposition = Disposition(parse.GetValue(leaveRunning), parse.GetValue(stop), parse.GetValue(leaveStopped)),
                Codec = ParseCodec(parse.GetValue(codec)!),
                Level = parse.GetValue(level),
                TcpEstablished = parse.GetValue(tcp),
                FileLocks = parse.GetValue(fileLocks),
                Pin = parse.GetValue(pin),
                CheckpointId = parse.GetValue(id) ?? "",
            };
            if (parse.GetValue(timeout) is { } t)
            {
                request.Timeout = Duration.FromTimeSpan(t);
            }
            foreach (var label in parse.GetValue(labels) ?? [])
            {
                var eq = label.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw PodMigrateException.InvalidArgument($"--label must be KEY=VALUE, not \"{label}\"");
                }
                request.Labels[label[..eq]] = label[(eq + 1)..];
            }
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            return await OperationsCommand.RunAndPrintAsync(client, "checkpoint", parse.IsJson(output), new StartOperationRequest { Checkpoint = request },
                async report => new Operation { Checkpoint = await client.CheckpointToEndAsync(request, report, ct) }, o => o.Checkpoint, Print, ct);
        }, ct));
        return command;
    }

    public static Codec ParseCodec(string name) => name switch
    {
        "zstd" => Codec.Zstd,
        "gzip" => Codec.Gzip,
        "none" => Codec.None,
        _ => throw PodMigrateException.InvalidArgument($"unknown codec \"{name}\": use zstd, gzip or none"),
    };

    private static SourceDisposition Disposition(bool leaveRunning, bool stop, bool leaveStopped)
    {
        if ((leaveRunning ? 1 : 0) + (stop ? 1 : 0) + (leaveStopped ? 1 : 0) > 1)
        {
            throw PodMigrateException.InvalidArgument("choose one of --leave-running, --stop, --leave-stopped");
        }
        return stop ? SourceDisposition.SourceStop : leaveStopped ? SourceDisposition.SourceLeaveStopped : SourceDisposition.SourceLeaveRunning;
    }

    public static void Print(CheckpointResult result)
    {
        var c = result.Checkpoint;
        Console.WriteLine($"checkpoint {c.CheckpointId} of {Who(c)} on {c.SourceNode}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  archive {c.Path}: {Mib(c.ArchiveBytes)} ({c.Codec.ToString().ToLowerInvariant()}) from {Mib(c.RawBytes)} raw, sha256 {c.ArchiveSha256}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  frozen {Ms(result.Frozen)}, total {Ms(result.Wall)}, source {result.SourceState.ToString().Replace("Source", "", StringComparison.Ordinal).ToLowerInvariant()}"));
        PrintTimings(result.Timings);
    }

    public static void PrintTimings(IEnumerable<PhaseTiming> timings, TextWriter? to = null)
    {
        foreach (var timing in timings)
        {
            (to ?? Console.Out).WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {timing.Phase.ToString().ToLowerInvariant(),-12} {Ms(timing.Duration),10}"));
        }
    }

    public static string Who(CheckpointInfo c) => c.PodName.Length > 0 ? $"{c.PodNamespace}/{c.PodName}/{c.ContainerName}" : c.ContainerId;

    public static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024.0):F2} MiB");

    public static string Ms(Duration? duration) => string.Create(CultureInfo.InvariantCulture, $"{(duration?.ToTimeSpan().TotalMilliseconds ?? 0):F0} ms");
}

/// <summary>--pod NS/NAME [--container C] | --container-id ID, shared by the verbs that name a container.</summary>
internal sealed class ContainerSelectorOptions
{
    private readonly Option<string?> _pod = new("--pod") { Description = "The pod: NAMESPACE/NAME" };
    private readonly Option<string?> _container = new("--container", "-c") { Description = "The pod's container (default: its only one)" };
    private readonly Option<string?> _containerId = new("--container-id") { Description = "A containerd container id instead of a pod" };

    public void AddTo(Command command)
    {
        command.Options.Add(_pod);
        command.Options.Add(_container);
        command.Options.Add(_containerId);
    }

    public ContainerSelector Read(ParseResult parse)
    {
        var pod = parse.GetValue(_pod);
        var id = parse.GetValue(_containerId);
        if ((pod is null) == (id is null))
        {
            throw PodMigrateException.InvalidArgument("name the container: --pod NAMESPACE/NAME [--container C], or --container-id ID");
        }
        if (id is not null)
        {
            return new ContainerSelector { ContainerId = id };
        }
        var (ns, name) = CliCommon.ParsePodKey(pod!);
        return new ContainerSelector { Pod = new ContainerSelector.Types.PodContainer { Namespace = ns, Pod = name, Container = parse.GetValue(_container) ?? "" } };
    }
}
