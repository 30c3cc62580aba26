using System.CommandLine;
using System.Globalization;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>`podmigrate restore`: bring a checkpoint from the share back to life on a node.</summary>
internal static class RestoreCommand
{
    public static Command Create()
    {
        var node = new Option<string?>("--node") { Description = "Node whose agent restores (local cluster)" };
        var agent = new Option<string?>("--agent") { Description = "Agent address (unix:/path, http://host:port, or https://host:port with --tls-dir); overrides --node" };
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint id", Required = true };
        var target = new RestoreTargetOptions();
        var output = CliCommon.OutputOption();
        var command = new Command("restore", "Restore a checkpoint from the shared storage on a node") { node, agent, checkpoint, output };
        target.AddTo(command);
        var tls = new AgentTlsOptions();
        tls.AddTo(command);
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            var request = target.Read(parse, parse.GetValue(checkpoint)!);
            using var client = CliCommon.ConnectAgent(parse.GetValue(node), parse.GetValue(agent), tls.Read(parse));
            return await OperationsCommand.RunAndPrintAsync(client, "restore", parse.IsJson(output), new StartOperationRequest { Restore = request },
                async report => new Operation { Restore = await client.RestoreToEndAsync(request, report, ct) }, o => o.Restore, Print, ct);
        }, ct));
        return command;
    }

    public static void Print(RestoreResult result)
    {
        if (result.ContainerId.Length == 0 && result.CheckpointImage.Length > 0)
        {
            // --image-only: the reference alone on stdout, for scripts (and a pod spec's image); the rest on stderr.
            Console.WriteLine(result.CheckpointImage);
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"checkpoint {result.CheckpointId} is image {result.CheckpointImage} on this node, {CheckpointCommand.Ms(result.Wall)}{(result.Timings.Count == 0 ? " (it was there already)" : "")}"));
            CheckpointCommand.PrintTimings(result.Timings, Console.Error);
            return;
        }
        var what = result.SandboxId.Length > 0 ? $"container {result.ContainerId} in pod sandbox {result.SandboxId}" : $"container {result.ContainerId}";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"restored checkpoint {result.CheckpointId} as {what}, pid {result.Pid}{(result.PodIp.Length > 0 ? $", pod IP {result.PodIp}" : "")}"));
        if (result.CheckpointImage.Length > 0)
        {
            Console.WriteLine($"  checkpoint image {result.CheckpointImage}");
        }
        Console.WriteLine($"  method {result.Method.ToString().ToLowerInvariant()}, total {CheckpointCommand.Ms(result.Wall)}");
        CheckpointCommand.PrintTimings(result.Timings);
    }
}

/// <summary>Where a restore goes: --pod NS/NAME [--uid] [--container] | --container-id NEW, and --method.</summary>
internal sealed class RestoreTargetOptions
{
    private readonly Option<string?> _pod = new("--pod") { Description = "Restore as this pod: NAMESPACE/NAME (run through CRI like a kubelet)" };
    private readonly Option<string?> _uid = new("--uid") { Description = "The restored pod's uid (default: new)" };
    private readonly Option<string?> _container = new("--container", "-c") { Description = "The restored container's name (default: the checkpointed one)" };
    private readonly Option<string?> _containerId = new("--container-id") { Description = "Restore as a bare containerd container with this new id (direct method)" };
    private readonly Option<string?> _method = new Option<string?>("--method") { Description = "cri-image (default for pods) or direct" }.AcceptOnlyFromAmong("cri-image", "direct");
    private readonly Option<bool> _imageOnly = new("--image-only") { Description = "cri-image: only import the checkpoint as an image on the node and print its reference (for a pod's image)" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { _pod, _uid, _container, _containerId, _method, _imageOnly })
        {
            command.Options.Add(option);
        }
    }

    public RestoreRequest Read(ParseResult parse, string checkpointId)
    {
        var request = new RestoreRequest { CheckpointId = checkpointId, ImageOnly = parse.GetValue(_imageOnly) };
        var pod = parse.GetValue(_pod);
        var id = parse.GetValue(_containerId);
        if (pod is not null && id is not null)
        {
            throw PodMigrateException.InvalidArgument("restore as a pod (--pod) or as a bare container (--container-id), not both");
        }
        if (pod is not null)
        {
            var (ns, name) = CliCommon.ParsePodKey(pod);
            request.Pod = new PodTarget { Namespace = ns, Name = name, Uid = parse.GetValue(_uid) ?? "", Container = parse.GetValue(_container) ?? "" };
        }
        else if (id is not null)
        {
            request.ContainerId = id;
        }
        else if (!request.ImageOnly)
        {
            throw PodMigrateException.InvalidArgument("name the target: --pod NAMESPACE/NAME or --container-id NEW (or --image-only)");
        }
        if (request.ImageOnly && (id is not null || parse.GetValue(_method) == "direct"))
        {
            throw PodMigrateException.InvalidArgument("--image-only makes a checkpoint image (--method cri-image); it has no container to restore into");
        }
        request.Method = parse.GetValue(_method) is { } method ? ParseMethod(method)
            : id is not null ? RestoreMethod.RestoreDirect : RestoreMethod.RestoreCriImage;
        return request;
    }

    /// <summary>The CLI's name of a restore method: cri-image or direct.</summary>
    public static RestoreMethod ParseMethod(string name) => name switch
    {
        "direct" => RestoreMethod.RestoreDirect,
        "cri-image" => RestoreMethod.RestoreCriImage,
        _ => throw PodMigrateException.InvalidArgument($"'{name}' is not a restore method (cri-image, direct)"),
    };

    public static string MethodName(RestoreMethod method) => method switch
    {
        RestoreMethod.RestoreDirect => "direct",
        RestoreMethod.RestoreCriImage => "cri-image",
        _ => method.ToString(),
    };
}
