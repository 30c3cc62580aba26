using System.CommandLine;
using PodMigrate.Agent;
using PodMigrate.Core.Errors;

// `podmigrate-agent agent [options]`: the same verb and options as `podmigrate agent`, so that scripts and the
// DaemonSet's arguments stay the same whichever binary runs the agent; and the same exit codes (ExitCodes, README).
var root = new RootCommand("podmigrate-agent: the PodMigrate node agent (gRPC API over containerd and CRIU)")
{
    AgentCommandLine.Create(ExitCodes.RunAsync),
};
return await root.Parse(args).InvokeAsync();
