using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.NodeInfo;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using Grpc.Core;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Services;

/// <summary>
/// podmigrate.agent.v1.AgentService on the generated base: a thin edge. Each handler turns the request into a call on
/// an operation and its outcome into a response; typed errors become status codes in one place
/// (<see cref="ErrorStatusInterceptor"/>): nothing here builds a status.
/// </summary>
internal sealed class AgentGrpcService(
    NodeInfoProvider nodeInfo,
    ContainerResolver resolver,
    ContainerdConnection containerd,
    CheckpointOperation checkpoint,
    RestoreOperation restore,
    HeldSources sources,
    SourceJournal journal,
    OperationGate gate,
    ICheckpointStore store,
    CheckpointDeletion deletion,
    AgentHealth health,
    Preparing.PreparedCheckpoints prepared,
    AgentOperations operations,
    Memory.MemorySampler memory,
    TimeProvider time) : AgentService.AgentServiceBase
{
    private static readonly TimeSpan MinimumMemoryInterval = TimeSpan.FromMilliseconds(100);

    public override async Task WatchMemory(WatchMemoryRequest request, IServerStreamWriter<MemorySample> responseStream, ServerCallContext context)
    {
        var interval = request.Interval is null || request.Interval.ToTimeSpan() <= TimeSpan.Zero ? TimeSpan.FromSeconds(1) : request.Interval.ToTimeSpan();
        if (interval < MinimumMemoryInterval)
        {
            throw PodMigrateException.InvalidArgument($"memory sample interval {interval} is below {MinimumMemoryInterval}");
        }
        var labels = request.PodLabels.ToDictionary(StringComparer.Ordinal);
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            await responseStream.WriteAsync(await memory.SampleAsync(labels, context.CancellationToken), context.CancellationToken);
        }
        while (await timer.WaitForNextTickAsync(context.CancellationToken));
    }

    public override Task<V1.NodeInfo> GetNodeInfo(GetNodeInfoRequest request, ServerCallContext context)
        => nodeInfo.GetAsync(context.CancellationToken);

    public override async Task<HealthResponse> Health(HealthRequest request, ServerCallContext context)
    {
        var problems = await health.ProblemsAsync(context.CancellationToken);
        var response = new HealthResponse
        {
            Status = problems.Count == 0 ? HealthResponse.Types.ServingStatus.Serving : HealthResponse.Types.ServingStatus.NotServing,
        };
        response.Problems.Add(problems);
        return response;
    }

    public override Task Checkpoint(CheckpointRequest request, IServerStreamWriter<CheckpointEvent> responseStream, ServerCallContext context)
        => ProgressStreaming.RunAsync(
            responseStream,
            report => checkpoint.RunAsync(request, report, context.CancellationToken),
            progress => new CheckpointEvent { Progress = progress },
            result => new CheckpointEvent { Result = result },
            context.CancellationToken);

    public override Task Restore(RestoreRequest request, IServerStreamWriter<RestoreEvent> responseStream, ServerCallContext context)
        => ProgressStreaming.RunAsync(
            responseStream,
            report => restore.RunAsync(request, report, context.CancellationToken),
            progress => new RestoreEvent { Progress = progress },
            result => new RestoreEvent { Result = result },
            context.CancellationToken);

    public override async Task<ResumeResponse> Resume(ResumeRequest request, ServerCallContext context)
        => new ResumeResponse { SourceState = await sources.ResumeHeldAsync(request.Container, request.CheckpointId, context.CancellationToken) };

    public override async Task<DiscardResponse> Discard(DiscardRequest request, ServerCallContext context)
        => new DiscardResponse { SourceState = await sources.DiscardHeldAsync(request.Container, request.CheckpointId, context.CancellationToken) };

    public override Task<HoldInfo> GetHold(GetHoldRequest request, ServerCallContext context)
        => sources.GetHoldAsync(request.Container, context.CancellationToken);

    public override Task<PreparedCheckpointInfo> PrepareRestore(PrepareRestoreRequest request, ServerCallContext context)
        => prepared.PrepareAsync(request, context.CancellationToken);

    public override async Task<ReleasePreparedResponse> ReleasePrepared(ReleasePreparedRequest request, ServerCallContext context)
        => new ReleasePreparedResponse { Removed = await prepared.ReleaseAsync(request.CheckpointId, context.CancellationToken) };

    public override Task<RestoredInfo> GetRestored(GetRestoredRequest request, ServerCallContext context)
        => prepared.GetRestoredAsync(request.CheckpointId, context.CancellationToken);

    public override async Task<CheckpointInfo> InspectCheckpoint(InspectCheckpointRequest request, ServerCallContext context)
    {
        var id = CheckpointId.Parse(request.CheckpointId);
        var stored = request.Verify
            ? await store.VerifyAsync(id, context.CancellationToken)
            : await store.GetAsync(id, context.CancellationToken);
        return CheckpointInfoMapper.ToInfo(stored);
    }

    public override async Task<DeleteCheckpointResponse> DeleteCheckpoint(DeleteCheckpointRequest request, ServerCallContext context)
    {
        await deletion.DeleteAsync(CheckpointId.Parse(request.CheckpointId), request.Force, context.CancellationToken);
        return new DeleteCheckpointResponse();
    }

    public override Task<ListContainersResponse> ListContainers(ListContainersRequest request, ServerCallContext context)
        => ListContainersAsync(request, context);

    public override Task<ListCheckpointsResponse> ListCheckpoints(ListCheckpointsRequest request, ServerCallContext context)
        => ListCheckpointsAsync(request, context);

    public override Task<Operation> StartOperation(StartOperationRequest request, ServerCallContext context)
        => Task.FromResult(operations.Start(request));

    public override Task<Operation> GetOperation(GetOperationRequest request, ServerCallContext context)
        => Task.FromResult(operations.Get(request.OperationId));

    public override async Task WatchOperation(GetOperationRequest request, IServerStreamWriter<Operation> responseStream, ServerCallContext context)
    {
        await foreach (var snapshot in operations.WatchAsync(request.OperationId, context.CancellationToken))
        {
            await responseStream.WriteAsync(snapshot, context.CancellationToken);
        }
    }

    public override Task<Operation> CancelOperation(CancelOperationRequest request, ServerCallContext context)
        => Task.FromResult(operations.Cancel(request.OperationId));

    public override Task<ListOperationsResponse> ListOperations(ListOperationsRequest request, ServerCallContext context)
    {
        var response = new ListOperationsResponse();
        response.Operations.Add(operations.List());
        return Task.FromResult(response);
    }

    private async Task<ListContainersResponse> ListContainersAsync(ListContainersRequest request, ServerCallContext context)
    {
        var containers = await resolver.ListAsync(request.PodNamespace, request.PodName, context.CancellationToken);
        var tasks = (await new ContainerdTasks(containerd).ListAsync(context.CancellationToken)).ToDictionary(t => t.ContainerId, StringComparer.Ordinal);
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
                State = ContainerStates.Of(task?.State),
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
