using System.CommandLine;
using PodMigrate.Kube.Client;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate node emulate`: plays kubelet for one node of the local cluster (where no kubelet can run) against an
/// API server, until SIGTERM or Ctrl-C; then it stops like kubelet does, leaving the pods running.
/// </summary>
internal static class NodeEmulateCommand
{
    public static Command Create()
    {
        var node = new Option<string>("--node") { Description = "The node's name (the Node object and kubernetes.io/hostname)", Required = true };
        var kubeconfig = new Option<string?>("--kubeconfig") { Description = "kubeconfig of the API server (default: $KUBECONFIG, ~/.kube/config, or the service account)" };
        var criSocket = new Option<string?>("--cri-socket") { Description = "The node's CRI endpoint (default: $PODMIGRATE_RUN_DIR/<node>/containerd.sock)" };
        var agentPort = new Option<int?>("--agent-port") { Description = "Publish a mirror pod for the node's agent serving gRPC on this port" };
        var address = new Option<string>("--address") { Description = "The node's InternalIP: pods' hostIP, host-network pods' podIP", DefaultValueFactory = _ => "127.0.0.1" };

        var command = new Command("emulate", "Play kubelet for a node: register it, run the pods bound to it through CRI, report their status")
        {
            node, kubeconfig, criSocket, agentPort, address,
        };
        command.SetAction((parse, cancellationToken) => CliCommon.RunAsync(async () =>
        {
            var nodeName = parse.GetValue(node)!;
            var options = new NodeEmulatorOptions
            {
                NodeName = nodeName,
                Address = parse.GetValue(address)!,
                AgentPort = parse.GetValue(agentPort),
            };
            var config = await CliHosting.LoadKubeConfigAsync(parse.GetValue(kubeconfig), cancellationToken);
            var socket = parse.GetValue(criSocket) ?? Path.Combine(CliCommon.RunDirectory, nodeName, "containerd.sock");
            using var loggerFactory = CliHosting.ConsoleLoggerFactory();
            using var api = new KubernetesApiClient(config);
            using var cri = CriConnection.ForUnixSocket(socket);
            await CliHosting.RunUntilStoppedAsync(stop => new NodeEmulator.NodeEmulator(api, cri, options, loggerFactory).RunAsync(stop), cancellationToken);
            return ExitCodes.Ok;
        }, cancellationToken));
        return command;
    }
}
