using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate migrate --from A --to B`: checkpoint on A leaving the source frozen, restore on B through the share,
/// then end the source (or resume it with --keep-source, a clone). Any failure after the freeze resumes the source:
/// the workload is never lost, and never runs twice.
/// </summary>
internal static class MigrateCommand
{
    public static Command Create()
    {
        var from = new Option<string>("--from") { Description = "Source node", Required = true };
        var to = new Option<string>("--to") { Description = "Target node", Required = true };
        var selector = new ContainerSelectorOptions();
        var codec = new Option<string>("--codec") { Description = "Archive codec", DefaultValueFactory = _ => "zstd" }.AcceptOnlyFromAmong("zstd", "gzip", "none");
        var level = new Option<int>("--level") { Description = "Codec level (0: the codec's default)" };
        var method = new Option<string?>("--method") { Description = "cri-image (default for pods) or direct" }.AcceptOnlyFromAmong("cri-image", "direct");
        var targetId = new Option<string?>("--target-container-id") { Description = "Direct method: the new container's id (default: <source id>-m<time>)" };
        var keepSource = new Option<bool>("--keep-source") { Description = "Clone: resume the source instead of ending it" };
        var output = CliCommon.OutputOption();
        var command = new Command("migrate", "Move a running container (or pod) from one node to another with its memory state")
        {
            from, to, codec, level, method, targetId, keepSource, output,
        };
        selector.AddTo(command);
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            var source = selector.Read(parse);
            var fromNode = parse.GetValue(from)!;
            var toNode = parse.GetValue(to)!;
            if (fromNode == toNode)
            {
                throw PodMigrateException.InvalidArgument($"--from and --to are both {fromNode}");
            }
            var json = parse.IsJson(output);
            var agentTls = tls.Read(parse);
            using var sourceAgent = CliCommon.ConnectAgent(fromNode, null, agentTls);
            using var targetAgent = CliCommon.ConnectAgent(toNode, null, agentTls);

            var started = Stopwatch.GetTimestamp();
            var checkpoint = await ProgressView.RunAsync($"checkpoint on {fromNode}", json, report => sourceAgent.CheckpointToEndAsync(new CheckpointRequest
            {
                Container = source,
                Disposition = SourceDisposition.SourceLeaveStopped,
                Codec = CheckpointCommand.ParseCodec(parse.GetValue(codec)!),
                Level = parse.GetValue(level),
                Labels = { ["podmigrate.io/migrate-to"] = toNode },
            }, report, ct));
            var checkpointed = Stopwatch.GetTimestamp();

            RestoreResult restored;
            try
            {
                var request = RestoreRequest(checkpoint.Checkpoint, source, parse.GetValue(method), parse.GetValue(targetId));
                restored = await ProgressView.RunAsync($"restore on {toNode}", json, report => targetAgent.RestoreToEndAsync(request, report, ct));
            }
            catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
            {
                // The clone did not come up: the source runs on, as if nothing had happened.
                await sourceAgent.ResumeAsync(source, CancellationToken.None);
                await Console.Error.WriteLineAsync($"restore on {toNode} failed; the source on {fromNode} was resumed");
                throw;
            }
            var downtime = checkpoint.Frozen.ToTimeSpan() + Stopwatch.GetElapsedTime(checkpointed);

            if (parse.GetValue(keepSource))
            {
                await sourceAgent.ResumeAsync(source, ct);
            }
            else
            {
                await sourceAgent.DiscardAsync(source, ct);
                await RemoveSourcePodAsync(fromNode, source, checkpoint.Checkpoint, ct);
            }
            var total = Stopwatch.GetElapsedTime(started);

            if (json)
            {
                CliCommon.WriteJson(new Dictionary<string, IMessage>
                {
                    ["checkpoint"] = checkpoint,
                    ["restore"] = restored,
                    ["downtime"] = Duration.FromTimeSpan(downtime),
                    ["total"] = Duration.FromTimeSpan(total),
                });
            }
            else
            {
                PrintTable(fromNode, toNode, checkpoint, restored, downtime, total, parse.GetValue(keepSource));
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static RestoreRequest RestoreRequest(CheckpointInfo checkpoint, ContainerSelector source, string? method, string? targetId)
    {
        var direct = method == "direct" || source.TargetCase == ContainerSelector.TargetOneofCase.ContainerId;
        var request = new RestoreRequest { CheckpointId = checkpoint.CheckpointId };
        if (direct)
        {
            request.Method = RestoreMethod.RestoreDirect;
            request.ContainerId = targetId ?? string.Create(CultureInfo.InvariantCulture, $"{checkpoint.ContainerId}-m{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}");
        }
        else
        {
            request.Method = RestoreMethod.RestoreCriImage;
            request.Pod = new PodTarget { Namespace = checkpoint.PodNamespace, Name = checkpoint.PodName, Container = checkpoint.ContainerName };
        }
        return request;
    }

    /// <summary>
    /// On a real cluster the controller deletes the source Pod object and its kubelet tears it down; on the local
    /// cluster this CLI plays that kubelet, through the source node's CRI.
    /// </summary>
    private static async Task RemoveSourcePodAsync(string node, ContainerSelector source, CheckpointInfo checkpoint, CancellationToken cancellationToken)
    {
        var socket = Path.Combine(CliCommon.RunDirectory, node, "containerd.sock");
        if (source.TargetCase != ContainerSelector.TargetOneofCase.Pod || !File.Exists(socket))
        {
            return;
        }
        using var cri = CriConnection.ForUnixSocket(socket);
        var runner = new KubeletPodRunner(cri, NullLogger<KubeletPodRunner>.Instance);
        await runner.RemoveAsync(checkpoint.PodNamespace, checkpoint.PodName, TimeSpan.Zero, cancellationToken);
    }

    private static void PrintTable(string from, string to, CheckpointResult checkpoint, RestoreResult restored, TimeSpan downtime, TimeSpan total, bool kept)
    {
        var c = checkpoint.Checkpoint;
        Console.WriteLine($"migrated {CheckpointCommand.Who(c)} from {from} to {to} through checkpoint {c.CheckpointId}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  archive {CheckpointCommand.Mib(c.ArchiveBytes)} ({c.Codec.ToString().ToLowerInvariant()}) of {CheckpointCommand.Mib(c.RawBytes)} raw"));
        Console.WriteLine($"  now: container {restored.ContainerId}{(restored.PodIp.Length > 0 ? $" at {restored.PodIp}" : "")} on {to}; source {(kept ? "resumed (clone)" : "ended")}");
        Console.WriteLine();
        Console.WriteLine($"  {"phase",-22} {"time",10}");
        foreach (var t in checkpoint.Timings)
        {
            Console.WriteLine($"  {"checkpoint " + t.Phase.ToString().ToLowerInvariant(),-22} {CheckpointCommand.Ms(t.Duration),10}");
        }
        foreach (var t in restored.Timings)
        {
            Console.WriteLine($"  {"restore " + t.Phase.ToString().ToLowerInvariant(),-22} {CheckpointCommand.Ms(t.Duration),10}");
        }
        Console.WriteLine($"  {"checkpoint total",-22} {CheckpointCommand.Ms(checkpoint.Wall),10}");
        Console.WriteLine($"  {"restore total",-22} {CheckpointCommand.Ms(restored.Wall),10}");
        Console.WriteLine($"  {"downtime (frozen→run)",-22} {CheckpointCommand.Ms(Duration.FromTimeSpan(downtime)),10}");
        Console.WriteLine($"  {"end to end",-22} {CheckpointCommand.Ms(Duration.FromTimeSpan(total)),10}");
    }
}
