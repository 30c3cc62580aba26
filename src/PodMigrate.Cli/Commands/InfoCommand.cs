using System.CommandLine;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate info --node N`: what a node's agent reports (versions, CRIU features, the share).</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var node = new Option<string?>("--node") { Description = "Node (local cluster)" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var output = CliCommon.OutputOption();
        var command = new Command("info", "Show a node agent's versions, CRIU features and share") { node, agent, output };
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            var info = await client.GetNodeInfoAsync(ct);
            var health = await client.HealthAsync(ct);
            if (parse.IsJson(output))
            {
                CliCommon.WriteJson(info);
                return health.Problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Unavailable;
            }
            Console.WriteLine($"node         {info.NodeName} (agent {info.AgentVersion})");
            Console.WriteLine($"containerd   {info.ContainerdVersion}, runc {info.RuncVersion}, CRIU {info.CriuVersionText}");
            Console.WriteLine($"kernel       {info.Kernel} {info.Architecture}, cgroups {info.CgroupLayout}");
            Console.WriteLine($"CRIU         lazy pages {YesNo(info.CriuFeatures.LazyPages)}, memory tracking {YesNo(info.CriuFeatures.MemTrack)}, pidfd store {YesNo(info.CriuFeatures.PidfdStore)}");
            Console.WriteLine($"share        {info.Share.Path}: {(info.Share.FreeBytes < 0 ? "unknown space" : CheckpointCommand.Mib(info.Share.FreeBytes))} free, {(info.Share.Writable ? "writable" : "NOT writable")}");
            Console.WriteLine($"codecs       {string.Join(", ", info.Codecs)}");
            Console.WriteLine($"health       {(health.Problems.Count == 0 ? "serving" : string.Join("; ", health.Problems))}");
            return health.Problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Unavailable;
        }, ct));
        return command;
    }

    private static string YesNo(bool value) => value ? "yes" : "no";
}
