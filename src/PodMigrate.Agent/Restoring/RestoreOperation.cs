using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Restoring;

/// <summary>Restores a checkpoint from the share into a container on this node.</summary>
internal sealed class RestoreOperation
{
    public static Task<RestoreResult> RunAsync(RestoreRequest request, Action<Progress> report, CancellationToken cancellationToken)
        => throw new PodMigrateException(ErrorKind.Unimplemented, "restore is not implemented yet");
}
