using System.CommandLine;
using Microsoft.Extensions.Hosting;
using PodMigrate.Agent;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate agent`: runs the node agent (what the DaemonSet's container runs) in the foreground.</summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var node = new Option<string>("--node") { Description = "This node's name (default: $NODE_NAME)" };
        var containerd = new Option<string>("--containerd-socket") { Description = "containerd's gRPC socket (default /run/containerd/containerd.sock)" };
        var socket = new Option<string>("--socket") { Description = "Unix socket to serve the agent API on (default /run/podmigrate/agent.sock)" };
        var port = new Option<int?>("--port") { Description = "TCP port to serve the agent API on (HTTP/2; 0: none; default 7440)" };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "TCP port of the Prometheus /metrics endpoint (0: none)" };
        var listen = new Option<string>("--listen") { Description = "Address the TCP ports bind to (default 0.0.0.0)" };
        var share = new Option<string>("--share") { Description = "The shared checkpoint storage (default /var/lib/podmigrate/share)" };
        var state = new Option<string>("--state-dir") { Description = "Node-local state: the journal of held sources, staging unless --staging-dir (default /var/lib/podmigrate/agent)" };
        var staging = new Option<string>("--staging-dir") { Description = "Where CRIU images are dumped and archives unpacked; a tmpfs makes both run at memory speed (default <state-dir>/staging)" };

        var command = new Command("agent", "Run the PodMigrate node agent (gRPC API over containerd and CRIU)")
        {
            node, containerd, socket, port, metricsPort, listen, share, state, staging,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var app = AgentHost.Build([], options =>
            {
                options.NodeName = parse.GetValue(node) ?? options.NodeName;
                options.ContainerdSocket = parse.GetValue(containerd) ?? options.ContainerdSocket;
                options.UnixSocket = parse.GetValue(socket) ?? options.UnixSocket;
                options.GrpcPort = parse.GetValue(port) ?? options.GrpcPort;
                options.MetricsPort = parse.GetValue(metricsPort) ?? options.MetricsPort;
                options.ListenAddress = parse.GetValue(listen) ?? options.ListenAddress;
                options.ShareRoot = parse.GetValue(share) ?? options.ShareRoot;
                options.StateDirectory = parse.GetValue(state) ?? options.StateDirectory;
                options.StagingDirectory = parse.GetValue(staging) ?? options.StagingDirectory;
            });
            await app.StartAsync(cancellationToken);
            await app.WaitForShutdownAsync(cancellationToken);
            return ExitCodes.Ok;
        });
        return command;
    }
}
