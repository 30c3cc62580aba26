using System.Diagnostics;
using PodMigrate.Core.Processes;
using PodMigrate.TestKit.Cli;

namespace PodMigrate.TestKit.Agent;

/// <summary>
/// What the tests run as an agent process: $PODMIGRATE_AGENT_BIN as scripts/cluster.sh reads it (scripts/test.sh sets it to
/// podmigrate-agent published NativeAOT from src/PodMigrate.Agent.Host, the binary the DaemonSet's image runs), else the
/// CLI's `agent` verb. Both take the same arguments (`agent …`, PodMigrate.Agent/AgentCommandLine.cs).
/// </summary>
public static class AgentBinary
{
    public const string EnvironmentVariable = "PODMIGRATE_AGENT_BIN";

    /// <summary>The published agent binary, or null when the CLI runs the agent.</summary>
    public static string? Published => Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } path ? path : null;

    /// <summary>The command that starts an agent process, before its `agent …` arguments.</summary>
    public static IReadOnlyList<string> Command => Published is { } published ? [published] : ["dotnet", PodmigrateCli.DllPath];

    /// <summary>
    /// podmigrate-agent: published when $PODMIGRATE_AGENT_BIN names it, else this build's (JIT; TestKit references
    /// PodMigrate.Agent.Host, so podmigrate-agent.dll sits beside the tests).
    /// </summary>
    public static IReadOnlyList<string> HostCommand => Published is { } published
        ? [published]
        : ["dotnet", Path.Combine(AppContext.BaseDirectory, "podmigrate-agent.dll")];

    public static ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(Command[0]);
        foreach (var argument in Command.Skip(1).Concat(arguments))
        {
            start.ArgumentList.Add(argument);
        }
        return start;
    }

    /// <summary>Runs <paramref name="command"/> (default <see cref="Command"/>) with `agent …` arguments to its end, e.g. an agent that must refuse to start.</summary>
    public static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, IReadOnlyList<string>? command = null)
    {
        command ??= Command;
        return ProcessRunner.RunAsync(new ProcessSpec(command[0], [.. command.Skip(1), .. arguments]) { Timeout = TimeSpan.FromSeconds(60) }, cancellationToken);
    }
}
