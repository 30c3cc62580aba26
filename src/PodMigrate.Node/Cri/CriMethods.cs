using Google.Protobuf.Reflection;
using PodMigrate.Core.Grpc;
using Runtime.V1;

namespace PodMigrate.Node.Cri;

/// <summary>The CRI v1 RPCs PodMigrate calls, made once from the descriptors protoc emits.</summary>
internal static class CriMethods
{
    private static readonly ServiceDescriptor RuntimeService = ApiReflection.Descriptor.Services.Single(s => s.Name == "RuntimeService");
    private static readonly ServiceDescriptor ImageService = ApiReflection.Descriptor.Services.Single(s => s.Name == "ImageService");

    public static readonly Method<VersionRequest, VersionResponse> Version = Method.FromDescriptor<VersionRequest, VersionResponse>(RuntimeService, "Version");
    public static readonly Method<StatusRequest, StatusResponse> Status = Method.FromDescriptor<StatusRequest, StatusResponse>(RuntimeService, "Status");
    public static readonly Method<RunPodSandboxRequest, RunPodSandboxResponse> RunPodSandbox = Method.FromDescriptor<RunPodSandboxRequest, RunPodSandboxResponse>(RuntimeService, "RunPodSandbox");
    public static readonly Method<StopPodSandboxRequest, StopPodSandboxResponse> StopPodSandbox = Method.FromDescriptor<StopPodSandboxRequest, StopPodSandboxResponse>(RuntimeService, "StopPodSandbox");
    public static readonly Method<RemovePodSandboxRequest, RemovePodSandboxResponse> RemovePodSandbox = Method.FromDescriptor<RemovePodSandboxRequest, RemovePodSandboxResponse>(RuntimeService, "RemovePodSandbox");
    public static readonly Method<PodSandboxStatusRequest, PodSandboxStatusResponse> PodSandboxStatus = Method.FromDescriptor<PodSandboxStatusRequest, PodSandboxStatusResponse>(RuntimeService, "PodSandboxStatus");
    public static readonly Method<ListPodSandboxRequest, ListPodSandboxResponse> ListPodSandbox = Method.FromDescriptor<ListPodSandboxRequest, ListPodSandboxResponse>(RuntimeService, "ListPodSandbox");
    public static readonly Method<CreateContainerRequest, CreateContainerResponse> CreateContainer = Method.FromDescriptor<CreateContainerRequest, CreateContainerResponse>(RuntimeService, "CreateContainer");
    public static readonly Method<StartContainerRequest, StartContainerResponse> StartContainer = Method.FromDescriptor<StartContainerRequest, StartContainerResponse>(RuntimeService, "StartContainer");
    public static readonly Method<StopContainerRequest, StopContainerResponse> StopContainer = Method.FromDescriptor<StopContainerRequest, StopContainerResponse>(RuntimeService, "StopContainer");
    public static readonly Method<RemoveContainerRequest, RemoveContainerResponse> RemoveContainer = Method.FromDescriptor<RemoveContainerRequest, RemoveContainerResponse>(RuntimeService, "RemoveContainer");
    public static readonly Method<ListContainersRequest, ListContainersResponse> ListContainers = Method.FromDescriptor<ListContainersRequest, ListContainersResponse>(RuntimeService, "ListContainers");
    public static readonly Method<ContainerStatusRequest, ContainerStatusResponse> ContainerStatus = Method.FromDescriptor<ContainerStatusRequest, ContainerStatusResponse>(RuntimeService, "ContainerStatus");
    public static readonly Method<ExecSyncRequest, ExecSyncResponse> ExecSync = Method.FromDescriptor<ExecSyncRequest, ExecSyncResponse>(RuntimeService, "ExecSync");
    public static readonly Method<CheckpointContainerRequest, CheckpointContainerResponse> CheckpointContainer = Method.FromDescriptor<CheckpointContainerRequest, CheckpointContainerResponse>(RuntimeService, "CheckpointContainer");

    public static readonly Method<PullImageRequest, PullImageResponse> PullImage = Method.FromDescriptor<PullImageRequest, PullImageResponse>(ImageService, "PullImage");
    public static readonly Method<ImageStatusRequest, ImageStatusResponse> ImageStatus = Method.FromDescriptor<ImageStatusRequest, ImageStatusResponse>(ImageService, "ImageStatus");
    public static readonly Method<ListImagesRequest, ListImagesResponse> ListImages = Method.FromDescriptor<ListImagesRequest, ListImagesResponse>(ImageService, "ListImages");
    public static readonly Method<RemoveImageRequest, RemoveImageResponse> RemoveImage = Method.FromDescriptor<RemoveImageRequest, RemoveImageResponse>(ImageService, "RemoveImage");
}
