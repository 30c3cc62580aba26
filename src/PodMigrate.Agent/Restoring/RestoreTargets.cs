using PodMigrate.Agent.Containers;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Restoring;

/// <summary>Checks a restore request's method and target before anything is read or created.</summary>
internal static class RestoreTargets
{
    /// <summary>
    /// The method to use. UNSPECIFIED means DIRECT (the API's default) for a container id, and CRI_IMAGE for a pod
    /// target, the only method that can restore into a pod.
    /// </summary>
    public static RestoreMethod MethodOf(RestoreRequest request) => request.Method switch
    {
        RestoreMethod.Unspecified => request.TargetCase == RestoreRequest.TargetOneofCase.Pod ? RestoreMethod.RestoreCriImage : RestoreMethod.RestoreDirect,
        RestoreMethod.RestoreDirect or RestoreMethod.RestoreCriImage => request.Method,
        _ => throw PodMigrateException.InvalidArgument($"unknown restore method {(int)request.Method}"),
    };

    /// <summary>The gate key of the target (a restore into a pod or container id that another restore is creating is refused).</summary>
    public static string Validate(RestoreRequest request, RestoreMethod method)
    {
        switch (request.TargetCase)
        {
            case RestoreRequest.TargetOneofCase.Pod:
                var pod = request.Pod;
                if (!KubeNames.IsValidName(pod.Namespace) || !KubeNames.IsValidName(pod.Name))
                {
                    throw PodMigrateException.InvalidArgument($"'{pod.Namespace}/{pod.Name}' is not a valid pod namespace/name");
                }
                if (pod.Container.Length > 0 && !KubeNames.IsValidName(pod.Container))
                {
                    throw PodMigrateException.InvalidArgument($"'{pod.Container}' is not a valid container name");
                }
                if (pod.Uid.Length > 0 && !KubeNames.IsValidName(pod.Uid))
                {
                    throw PodMigrateException.InvalidArgument($"'{pod.Uid}' is not a valid pod uid");
                }
                if (method != RestoreMethod.RestoreCriImage)
                {
                    throw PodMigrateException.InvalidArgument($"a pod target ({pod.Namespace}/{pod.Name}) is restored through CRI: use RESTORE_CRI_IMAGE, or a container id with RESTORE_DIRECT");
                }
                return $"pod {pod.Namespace}/{pod.Name}";

            case RestoreRequest.TargetOneofCase.ContainerId:
                if (!ContainerIds.IsValid(request.ContainerId))
                {
                    throw PodMigrateException.InvalidArgument($"'{request.ContainerId}' is not a valid container id");
                }
                if (method != RestoreMethod.RestoreDirect)
                {
                    throw PodMigrateException.InvalidArgument($"a bare container ({request.ContainerId}) is restored with RESTORE_DIRECT; RESTORE_CRI_IMAGE needs a pod target");
                }
                return request.ContainerId;

            default:
                if (method == RestoreMethod.RestoreCriImage && request.ImageOnly)
                {
                    return "";
                }
                throw PodMigrateException.InvalidArgument("name the restore target: a pod (namespace, name) or a new container id");
        }
    }
}
