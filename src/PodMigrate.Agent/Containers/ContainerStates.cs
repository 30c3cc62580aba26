using PodMigrate.Agent.V1;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Containers;

/// <summary>The agent's API state of a container from its task (none: the container has no task, so it is stopped).</summary>
internal static class ContainerStates
{
    public static ContainerState Of(TaskState? task) => task switch
    {
        TaskState.Running => ContainerState.ContainerRunning,
        TaskState.Paused or TaskState.Pausing => ContainerState.ContainerPaused,
        TaskState.Created => ContainerState.ContainerCreated,
        _ => ContainerState.ContainerStopped,
    };
}
