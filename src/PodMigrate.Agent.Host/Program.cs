using System.CommandLine;
using PodMigrate.Agent;
using PodMigrate.Core.Errors;

// `podmigrate-agent agent [options]`: the same verb and options as `podmigrate agent`, so that scripts and the
// DaemonSet's arguments stay the same whichever binary runs the agent.
var root = new RootCommand("podmigrate-agent: the PodMigrate node agent (gRPC API over containerd and CRIU)")
{
    AgentCommandLine.Create(RunAsync),
};
return await root.Parse(args).InvokeAsync();

// The CLI's exit codes for what the agent can fail with at start (README, exit codes): usage 2, everything else 1.
static async Task<int> RunAsync(Func<Task<int>> action, CancellationToken cancellationToken)
{
    try
    {
        return await action();
    }
    catch (PodMigrateException e)
    {
        await Console.Error.WriteLineAsync($"error: {e.Message}");
        return e.Kind == ErrorKind.InvalidArgument ? 2 : 1;
    }
    catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
    {
        return 130;
    }
}
