using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate node ...`: run, list, remove and exec into pods on one node through its CRI endpoint, the way
/// kubelet would. `--node X` means the local cluster's node X (scripts/cluster.sh); `--socket` names any endpoint.
/// </summary>
internal static class NodeCommand
{
    private static readonly Option<string?> NodeOption = new("--node") { Description = "Node of the local cluster (its socket is $PODMIGRATE_RUN_DIR/<node>/containerd.sock)" };
    private static readonly Option<string?> SocketOption = new("--socket") { Description = "CRI endpoint (unix socket path); overrides --node" };
    private static readonly Option<string> OutputOption = CliCommon.OutputOption();

    public static Command Create()
    {
        var command = new Command("node", "Run, list, remove and exec into pods on a node through CRI, as kubelet does");
        command.Subcommands.Add(RunPod());
        command.Subcommands.Add(Pods());
        command.Subcommands.Add(RemovePod());
        command.Subcommands.Add(Exec());
        command.Subcommands.Add(Info());
        command.Subcommands.Add(NodeEmulateCommand.Create());
        return command;
    }

    private static Command RunPod()
    {
        var file = new Option<string>("--filename", "-f") { Description = "Pod manifest (YAML or JSON)", Required = true };
        var command = new Command("run-pod", "Pull images, run the sandbox and start the containers of a Pod manifest") { NodeOption, SocketOption, file, OutputOption };
        command.SetAction((parse, ct) => RunWithRunnerAsync(parse, async (runner, output) =>
        {
            var pod = await KubeManifests.ReadPodFileAsync(parse.GetValue(file)!, ct);
            // A pod from a manifest file is a static pod: kubelet stamps config.source "file".
            var started = await runner.RunAsync(pod, ct, configSource: "file");
            if (output == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(started, NodePodJsonContext.Default.NodePod));
            }
            else
            {
                Console.WriteLine($"pod {started.Key} uid {started.Uid} sandbox {started.SandboxId} ip {started.Ip ?? "-"}");
                PrintContainers(started);
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Pods()
    {
        var ns = new Option<string?>("--namespace", "-n") { Description = "Only pods of this namespace" };
        var command = new Command("pods", "List the pods on a node (sandboxes and their containers)") { NodeOption, SocketOption, ns, OutputOption };
        command.SetAction((parse, ct) => RunWithRunnerAsync(parse, async (runner, output) =>
        {
            var pods = await runner.ListAsync(parse.GetValue(ns), ct);
            if (output == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(pods, NodePodJsonContext.Default.IReadOnlyListNodePod));
                return ExitCodes.Ok;
            }
            Console.WriteLine($"{"POD",-40} {"STATE",-9} {"IP",-15} {"UID",-36} CONTAINERS");
            foreach (var pod in pods)
            {
                var containers = string.Join(",", pod.Containers.Select(c => $"{c.Name}:{c.State}"));
                Console.WriteLine($"{pod.Key,-40} {pod.State,-9} {pod.Ip ?? "-",-15} {pod.Uid,-36} {containers}");
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command RemovePod()
    {
        var pod = new Argument<string?>("pod") { Description = "NAMESPACE/NAME (or NAME in namespace default)", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Remove every pod on the node" };
        var grace = new Option<int?>("--grace-period") { Description = "Seconds between SIGTERM and SIGKILL (default: the pod's terminationGracePeriodSeconds)" };
        var command = new Command("rm-pod", "Stop and remove a pod (its containers, sandbox, logs and cgroups)") { NodeOption, SocketOption, pod, all, grace };
        command.SetAction((parse, ct) => RunWithRunnerAsync(parse, async (runner, _) =>
        {
            var gracePeriod = parse.GetValue(grace) is { } seconds ? TimeSpan.FromSeconds(seconds) : (TimeSpan?)null;
            if (parse.GetValue(all))
            {
                var removed = await runner.RemoveAllAsync(gracePeriod, ct);
                Console.WriteLine($"removed {removed} pods");
                return ExitCodes.Ok;
            }
            var (ns, name) = CliCommon.ParsePodKey(parse.GetValue(pod) ?? throw PodMigrateException.InvalidArgument("rm-pod needs NAMESPACE/NAME or --all"));
            if (!await runner.RemoveAsync(ns, name, gracePeriod, ct))
            {
                throw PodMigrateException.NotFound($"pod {ns}/{name} is not on this node");
            }
            Console.WriteLine($"removed pod {ns}/{name}");
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static Command Exec()
    {
        var pod = new Argument<string>("pod") { Description = "NAMESPACE/NAME (or NAME in namespace default)" };
        var argv = new Argument<string[]>("command") { Description = "Command and arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var container = new Option<string?>("--container", "-c") { Description = "Container name (default: the first running one)" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds before the runtime kills the command", DefaultValueFactory = _ => 30 };
        var command = new Command("exec", "Run a command in a pod's container and wait for it (CRI ExecSync)") { NodeOption, SocketOption, container, timeout, OutputOption, pod, argv };
        command.SetAction((parse, ct) => RunWithRunnerAsync(parse, async (runner, output) =>
        {
            var (ns, name) = CliCommon.ParsePodKey(parse.GetValue(pod)!);
            var result = await runner.ExecAsync(ns, name, parse.GetValue(container), parse.GetValue(argv)!, TimeSpan.FromSeconds(parse.GetValue(timeout)), ct);
            if (output == "json")
            {
                Console.WriteLine(JsonSerializer.Serialize(result, NodePodJsonContext.Default.NodeExecResult));
                return result.ExitCode == 0 ? ExitCodes.Ok : ExitCodes.Failure;
            }
            Console.Out.Write(result.Stdout);
            Console.Error.Write(result.Stderr);
            // The command's own exit status, as `kubectl exec` passes it on.
            return result.ExitCode;
        }, ct));
        return command;
    }

    private static Command Info()
    {
        var command = new Command("info", "Runtime version and CRI status of a node; fails if the runtime or its network is not ready") { NodeOption, SocketOption, OutputOption };
        command.SetAction((parse, ct) => RunAsync(parse, async (connection, output) =>
        {
            var version = await connection.Runtime.VersionAsync(ct);
            var status = await connection.Runtime.StatusAsync(verbose: false, ct);
            var conditions = status.Status?.Conditions.ToList() ?? [];
            var ready = conditions.Count > 0 && conditions.All(c => c.Status);
            if (output == "json")
            {
                using var writer = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true });
                writer.WriteStartObject();
                writer.WriteString("endpoint", connection.Target);
                writer.WriteString("runtimeName", version.RuntimeName);
                writer.WriteString("runtimeVersion", version.RuntimeVersion);
                writer.WriteString("runtimeApiVersion", version.RuntimeApiVersion);
                writer.WriteBoolean("ready", ready);
                writer.WriteStartObject("conditions");
                foreach (var c in conditions)
                {
                    writer.WriteBoolean(c.Type, c.Status);
                }
                writer.WriteEndObject();
                writer.WriteEndObject();
                writer.Flush();
                Console.WriteLine();
            }
            else
            {
                Console.WriteLine($"endpoint: {connection.Target}");
                Console.WriteLine($"runtime:  {version.RuntimeName} {version.RuntimeVersion} (CRI {version.RuntimeApiVersion})");
                foreach (var c in conditions)
                {
                    Console.WriteLine($"  {c.Type}: {(c.Status ? "true" : $"false ({c.Reason}: {c.Message})")}");
                }
            }
            return ready ? ExitCodes.Ok : ExitCodes.FailedPrecondition;
        }, ct));
        return command;
    }

    private static Task<int> RunWithRunnerAsync(ParseResult parse, Func<KubeletPodRunner, string, Task<int>> action, CancellationToken cancellationToken)
        => RunAsync(parse, (connection, output) => action(new KubeletPodRunner(connection, NullLogger<KubeletPodRunner>.Instance), output), cancellationToken);

    private static Task<int> RunAsync(ParseResult parse, Func<CriConnection, string, Task<int>> action, CancellationToken cancellationToken)
        => ExitCodes.RunAsync(async () =>
        {
            using var connection = CriConnection.ForUnixSocket(ResolveSocket(parse));
            return await action(connection, parse.GetValue(OutputOption) ?? "text");
        }, cancellationToken);

    private static string ResolveSocket(ParseResult parse)
    {
        if (parse.GetValue(SocketOption) is { Length: > 0 } socket)
        {
            return socket;
        }
        var node = parse.GetValue(NodeOption);
        if (string.IsNullOrEmpty(node))
        {
            throw PodMigrateException.InvalidArgument("name the node: --node NAME (local cluster) or --socket PATH");
        }
        var runDir = CliCommon.RunDirectory;
        var path = Path.Combine(runDir, node, "containerd.sock");
        if (!File.Exists(path))
        {
            throw PodMigrateException.Unavailable($"node {node}: no containerd socket at {path} (is the local cluster up? scripts/cluster.sh up)");
        }
        return path;
    }

    private static void PrintContainers(NodePod pod)
    {
        foreach (var c in pod.Containers)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  container {c.Name} {c.State} id {c.Id} image {c.Image}"));
        }
    }
}
