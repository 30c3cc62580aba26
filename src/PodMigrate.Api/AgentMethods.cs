using PodMigrate.Core.Grpc;

namespace PodMigrate.Agent.V1;

/// <summary>The methods of podmigrate.agent.v1.AgentService, shared by the server and its clients.</summary>
public static class AgentMethods
{
    private static readonly Google.Protobuf.Reflection.ServiceDescriptor Service = AgentReflection.Descriptor.Services[0];

    public static string ServiceName => Service.FullName;

    public static readonly Method<GetNodeInfoRequest, NodeInfo> GetNodeInfo = Method.FromDescriptor<GetNodeInfoRequest, NodeInfo>(Service, "GetNodeInfo");
    public static readonly Method<HealthRequest, HealthResponse> Health = Method.FromDescriptor<HealthRequest, HealthResponse>(Service, "Health");
    public static readonly Method<ListContainersRequest, ListContainersResponse> ListContainers = Method.FromDescriptor<ListContainersRequest, ListContainersResponse>(Service, "ListContainers");
    public static readonly Method<CheckpointRequest, CheckpointEvent> Checkpoint = Method.FromDescriptor<CheckpointRequest, CheckpointEvent>(Service, "Checkpoint");
    public static readonly Method<RestoreRequest, RestoreEvent> Restore = Method.FromDescriptor<RestoreRequest, RestoreEvent>(Service, "Restore");
    public static readonly Method<ResumeRequest, ResumeResponse> Resume = Method.FromDescriptor<ResumeRequest, ResumeResponse>(Service, "Resume");
    public static readonly Method<DiscardRequest, DiscardResponse> Discard = Method.FromDescriptor<DiscardRequest, DiscardResponse>(Service, "Discard");
    public static readonly Method<ListCheckpointsRequest, ListCheckpointsResponse> ListCheckpoints = Method.FromDescriptor<ListCheckpointsRequest, ListCheckpointsResponse>(Service, "ListCheckpoints");
    public static readonly Method<InspectCheckpointRequest, CheckpointInfo> InspectCheckpoint = Method.FromDescriptor<InspectCheckpointRequest, CheckpointInfo>(Service, "InspectCheckpoint");
    public static readonly Method<DeleteCheckpointRequest, DeleteCheckpointResponse> DeleteCheckpoint = Method.FromDescriptor<DeleteCheckpointRequest, DeleteCheckpointResponse>(Service, "DeleteCheckpoint");
    public static readonly Method<PrepareRestoreRequest, PreparedCheckpointInfo> PrepareRestore = Method.FromDescriptor<PrepareRestoreRequest, PreparedCheckpointInfo>(Service, "PrepareRestore");
    public static readonly Method<ReleasePreparedRequest, ReleasePreparedResponse> ReleasePrepared = Method.FromDescriptor<ReleasePreparedRequest, ReleasePreparedResponse>(Service, "ReleasePrepared");
    public static readonly Method<GetRestoredRequest, RestoredInfo> GetRestored = Method.FromDescriptor<GetRestoredRequest, RestoredInfo>(Service, "GetRestored");
}
