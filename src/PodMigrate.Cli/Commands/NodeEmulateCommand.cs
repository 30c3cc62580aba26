using System.CommandLine;
using k8s.Models;
using PodMigrate.Core.Errors;
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

        var nodeMemory = new Option<string?>("--node-memory") { Description = "Enforce this memory capacity (e.g. 1536Mi) on all the node's pods together: one cgroup capped at it, reported as capacity and allocatable" };
        var nodeCgroup = new Option<string?>("--node-cgroup") { Description = "The cgroup of the node's pods with --node-memory (default /podmigrate/<node>)" };

        var command = new Command("emulate", "Play kubelet for a node: register it, run the pods bound to it through CRI, report their status")
        {
            node, kubeconfig, criSocket, agentPort, address, nodeMemory, nodeCgroup,
        };
        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(async () =>
        {
            var nodeName = parse.GetValue(node)!;
            var options = new NodeEmulatorOptions
            {
                NodeName = nodeName,
                Address = parse.GetValue(address)!,
                AgentPort = parse.GetValue(agentPort),
                NodeCgroup = parse.GetValue(nodeCgroup),
            };
            if (parse.GetValue(nodeMemory) is { Length: > 0 } memory)
            {
                options.NodeMemoryBytes = MemoryBytes(memory) is > 0 and var bytes
                    ? bytes
                    : throw PodMigrateException.InvalidArgument($"--node-memory '{memory}' is not a memory quantity (e.g. 1536Mi)");
            }
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

    /// <summary>A memory quantity (resource.Quantity: 1536Mi, 2G, 1073741824) in bytes; 0 when it is not one.</summary>
    private static long MemoryBytes(string quantity)
    {
        try
        {
            return new ResourceQuantity(quantity).ToInt64();
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            return 0;
        }
    }
}
