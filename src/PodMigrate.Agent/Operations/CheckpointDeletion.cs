using PodMigrate.Agent.Restoring;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;

namespace PodMigrate.Agent.Operations;

/// <summary>
/// DeleteCheckpoint: the checkpoint leaves the share, and this node's checkpoint images of it leave containerd (other
/// nodes' images go when their agents are asked). A pinned checkpoint is kept, images included, unless forced.
/// </summary>
internal sealed class CheckpointDeletion(ICheckpointStore store, CheckpointImages images)
{
    public async Task DeleteAsync(CheckpointId id, bool force, CancellationToken cancellationToken)
    {
        try
        {
            await store.DeleteAsync(id, force, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Gone from the share already (retention, another node): its images here are what is left to remove.
            if (await images.RemoveAsync(id, cancellationToken) == 0)
            {
                throw;
            }
            return;
        }
        await images.RemoveAsync(id, cancellationToken);
    }
}
