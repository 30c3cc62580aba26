using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.NodeInfo;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Services;

/// <summary>
/// podmigrate.agent.v1.AgentService: a thin edge. Each handler turns the request into a call on an operation and its
/// outcome into a response; typed errors become status codes in one place (ErrorMapping, the server's ExceptionMapper).
/// </summary>
internal sealed class AgentGrpcService(
    NodeInfoProvider nodeInfo,
    ContainerResolver resolver,
    ContainerdConnection containerd,
    CheckpointOperation checkpoint,
    RestoreOperation restore,
    SourceControl sources,
    SourceJournal journal,
    OperationGate gate,
    ICheckpointStore store,
    CheckpointDeletion deletion,
    Preparing.PreparedCheckpoints prepared)
{
    public GrpcServiceDefinition Definition() => new GrpcServiceDefinition(AgentMethods.ServiceName)
        .AddUnary(AgentMethods.GetNodeInfo, (_, context) => nodeInfo.GetAsync(context.CancellationToken))
        .AddUnary(AgentMethods.Health, HealthAsync)
        .AddUnary(AgentMethods.ListContainers, ListContainersAsync)
        .AddServerStreaming(AgentMethods.Checkpoint, (request, stream, context) => ProgressStreaming.RunAsync(
            stream,
            report => checkpoint.RunAsync(request, report, context.CancellationToken),
            progress => new CheckpointEvent { Progress = progress },
            result => new CheckpointEvent { Result = result },
            context.CancellationToken))
        .AddServerStreaming(AgentMethods.Restore, (request, stream, context) => ProgressStreaming.RunAsync(
            stream,
            report => restore.RunAsync(request, report, context.CancellationToken),
            progress => new RestoreEvent { Progress = progress },
            result => new RestoreEvent { Result = result },
            context.CancellationToken))
        .AddUnary(AgentMethods.Resume, async (request, context) => new ResumeResponse { SourceState = await sources.ResumeHeldAsync(request.Container, context.CancellationToken) })
        .AddUnary(AgentMethods.Discard, async (request, context) => new DiscardResponse { SourceState = await sources.DiscardHeldAsync(request.Container, context.CancellationToken) })
        .AddUnary(AgentMethods.ListCheckpoints, ListCheckpointsAsync)
        .AddUnary(AgentMethods.InspectCheckpoint, async (request, context) =>
        {
            var id = CheckpointId.Parse(request.CheckpointId);
            var stored = request.Verify
                ? await store.VerifyAsync(id, context.CancellationToken)
                : await store.GetAsync(id, context.CancellationToken);
            return CheckpointInfoMapper.ToInfo(stored);
        })
        .AddUnary(AgentMethods.DeleteCheckpoint, async (request, context) =>
        {
            await deletion.DeleteAsync(CheckpointId.Parse(request.CheckpointId), request.Force, context.CancellationToken);
            return new DeleteCheckpointResponse();
        })
        .AddUnary(AgentMethods.PrepareRestore, (request, context) => prepared.PrepareAsync(request, context.CancellationToken))
        .AddUnary(AgentMethods.ReleasePrepared, async (request, context) => new ReleasePreparedResponse { Removed = await prepared.ReleaseAsync(request.CheckpointId, context.CancellationToken) })
        .AddUnary(AgentMethods.GetRestored, (request, context) => prepared.GetRestoredAsync(request.CheckpointId, context.CancellationToken));

    private async Task<HealthResponse> HealthAsync(HealthRequest request, ServerCallContext context)
    {
        var response = new HealthResponse();
        try
        {
            await containerd.VersionAsync(context.CancellationToken);
        }
        catch (PodMigrateException e)
        {
            response.Problems.Add($"containerd ({containerd.Target}): {e.Message}");
        }
        try
        {
            await store.ListAsync(null, context.CancellationToken);
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException)
        {
            response.Problems.Add($"share: {e.Message}");
        }
        response.Status = response.Problems.Count == 0 ? HealthResponse.Types.ServingStatus.Serving : HealthResponse.Types.ServingStatus.NotServing;
        return response;
    }

    private async Task<ListContainersResponse> ListContainersAsync(ListContainersRequest request, ServerCallContext context)
    {
        var containers = await resolver.ListAsync(request.PodNamespace, request.PodName, context.CancellationToken);
        var tasks = (await new ContainerdTasks(containerd).ListAsync(context.CancellationToken)).ToDictionary(t => t.Id, StringComparer.Ordinal);
        var held = (await journal.EntriesAsync(context.CancellationToken)).ToDictionary(h => h.ContainerId, StringComparer.Ordinal);
        var response = new ListContainersResponse();
        foreach (var container in containers)
        {
            tasks.TryGetValue(container.Id, out var task);
            response.Containers.Add(new ContainerInfo
            {
                ContainerId = container.Id,
                ContainerdNamespace = container.ContainerdNamespace,
                PodNamespace = container.PodNamespace,
                PodName = container.PodName,
                PodUid = container.PodUid,
                ContainerName = container.ContainerName,
                Image = container.Image,
                State = task?.Status switch
                {
                    global::Containerd.V1.Types.Status.Running => ContainerState.ContainerRunning,
                    global::Containerd.V1.Types.Status.Paused or global::Containerd.V1.Types.Status.Pausing => ContainerState.ContainerPaused,
                    global::Containerd.V1.Types.Status.Created => ContainerState.ContainerCreated,
                    _ => ContainerState.ContainerStopped,
                },
                Pid = task?.Pid ?? 0,
                SandboxId = container.SandboxId,
                BusyWith = gate.HolderOf(container.Id) ?? (held.TryGetValue(container.Id, out var h) ? $"held stopped after checkpoint {h.CheckpointId}" : ""),
            });
        }
        return response;
    }

    private async Task<ListCheckpointsResponse> ListCheckpointsAsync(ListCheckpointsRequest request, ServerCallContext context)
    {
        if (request.PodName.Length > 0 && request.PodNamespace.Length == 0)
        {
            throw PodMigrateException.InvalidArgument("a pod name needs its namespace");
        }
        var pod = request.PodName.Length > 0 ? new Core.Archive.PodReference(request.PodNamespace, request.PodName) : null;
        var response = new ListCheckpointsResponse();
        response.Checkpoints.Add((await store.ListAsync(pod, context.CancellationToken)).Select(CheckpointInfoMapper.ToInfo));
        return response;
    }
}
