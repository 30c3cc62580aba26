using System.CommandLine;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate resume|discard`: release or end a source a checkpoint left stopped.</summary>
internal static class SourceCommands
{
    public static Command Resume() => Create("resume", "Let a source left stopped by a checkpoint run again",
        async (client, selector, checkpoint, ct) => (await client.ResumeAsync(selector, ct, checkpoint)).SourceState);

    public static Command Discard() => Create("discard", "End a source left stopped by a checkpoint (its task is killed)",
        async (client, selector, checkpoint, ct) => (await client.DiscardAsync(selector, ct, checkpoint)).SourceState);

    private static Command Create(string name, string description, Func<AgentClient, ContainerSelector, string?, CancellationToken, Task<SourceState>> action)
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Only if the source is held for this checkpoint id (refused otherwise)" };
        var node = new Option<string?>("--node") { Description = "Node whose agent holds the source (local cluster)" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var selector = new ContainerSelectorOptions();
        var command = new Command(name, description) { node, agent, checkpoint };
        selector.AddTo(command);
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            var state = await action(client, selector.Read(parse), parse.GetValue(checkpoint), ct);
            Console.WriteLine($"source {state.ToString().Replace("Source", "", StringComparison.Ordinal).ToLowerInvariant()}");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }
}
