using System.CommandLine;
using System.Globalization;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate checkpoints ls|inspect|rm`: the checkpoints on the shared storage, through any node's agent.</summary>
internal static class CheckpointsCommand
{
    public static Command Create()
    {
        var command = new Command("checkpoints", "List, inspect and delete checkpoints on the shared storage");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Inspect());
        command.Subcommands.Add(Remove());
        return command;
    }

    private static (Option<string?> Node, Option<string?> Agent, Option<string> Output, AgentTlsOptions Tls) Common(Command command)
    {
        var node = new Option<string?>("--node") { Description = "Node whose agent to ask (local cluster)", DefaultValueFactory = _ => "node-a" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var output = CliCommon.OutputOption();
        command.Options.Add(node);
        command.Options.Add(agent);
        command.Options.Add(output);
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        return (node, agent, output, tls);
    }

    private static Command List()
    {
        var pod = new Option<string?>("--pod") { Description = "Only this pod's: NAMESPACE/NAME" };
        var command = new Command("ls", "List checkpoints, newest first") { pod };
        var (node, agent, output, tls) = Common(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            var request = new ListCheckpointsRequest();
            if (parse.GetValue(pod) is { } key)
            {
                (request.PodNamespace, request.PodName) = CliCommon.ParsePodKey(key);
            }
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            var response = await client.ListCheckpointsAsync(request, ct);
            if (parse.IsJson(output))
            {
                CliCommon.WriteJson(response);
                return ExitCodes.Ok;
            }
            Console.WriteLine($"{"ID",-34} {"CREATED",-20} {"SOURCE",-28} {"NODE",-8} {"CODEC",-5} {"RAW",12} {"ARCHIVE",12} PIN");
            foreach (var c in response.Checkpoints)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{c.CheckpointId,-34} {c.Created.ToDateTime():yyyy-MM-dd HH:mm:ss} {CheckpointCommand.Who(c),-28} {c.SourceNode,-8} {c.Codec.ToString().ToLowerInvariant(),-5} {CheckpointCommand.Mib(c.RawBytes),12} {CheckpointCommand.Mib(c.ArchiveBytes),12} {(c.Pinned ? "yes" : "")}"));
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Inspect()
    {
        var id = new Argument<string>("checkpoint") { Description = "Checkpoint id" };
        var verify = new Option<bool>("--verify") { Description = "Re-read the archive and check its digest" };
        var command = new Command("inspect", "Show one checkpoint's manifest") { id, verify };
        var (node, agent, output, tls) = Common(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            var info = await client.InspectCheckpointAsync(parse.GetValue(id)!, parse.GetValue(verify), ct);
            if (parse.IsJson(output))
            {
                CliCommon.WriteJson(info);
                return ExitCodes.Ok;
            }
            Console.WriteLine($"checkpoint   {info.CheckpointId}{(parse.GetValue(verify) ? " (verified)" : "")}");
            Console.WriteLine($"created      {info.Created.ToDateTime():O} on {info.SourceNode}");
            Console.WriteLine($"source       {CheckpointCommand.Who(info)} (container {info.ContainerId})");
            Console.WriteLine($"image        {info.Image}");
            Console.WriteLine($"runtime      {info.Runtime}, CRIU {info.CriuVersion}");
            Console.WriteLine($"archive      {info.Path}");
            Console.WriteLine($"size         {CheckpointCommand.Mib(info.ArchiveBytes)} {info.Codec.ToString().ToLowerInvariant()} (level {info.Level}) of {CheckpointCommand.Mib(info.RawBytes)} in {info.FileCount} files");
            Console.WriteLine($"sha256       {info.ArchiveSha256}");
            Console.WriteLine($"pinned       {(info.Pinned ? "yes" : "no")}");
            foreach (var (key, value) in info.Labels)
            {
                Console.WriteLine($"label        {key}={value}");
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Remove()
    {
        var id = new Argument<string>("checkpoint") { Description = "Checkpoint id" };
        var force = new Option<bool>("--force") { Description = "Delete even if pinned" };
        var command = new Command("rm", "Delete a checkpoint") { id, force };
        var (node, agent, _, tls) = Common(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            await client.DeleteCheckpointAsync(parse.GetValue(id)!, parse.GetValue(force), ct);
            Console.WriteLine($"deleted {parse.GetValue(id)}");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }
}
