using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations;

/// <summary>What to do with a published checkpoint, given what holds its source now.</summary>
internal enum HoldVerdict
{
    /// <summary>The source is frozen by this very checkpoint: it has done nothing since, restoring it loses nothing.</summary>
    Restore,

    /// <summary>The agent is still working on this checkpoint (or on a Resume or Discard of its source): ask again shortly.</summary>
    Wait,

    /// <summary>
    /// The source is not held by this checkpoint (resumed, restarted, or held by another one): it may have run on since,
    /// and restoring the checkpoint would bring back an older state than the source reached. Roll back.
    /// </summary>
    NotHeld,
}

/// <summary>
/// The check the reconciler makes before it restores a checkpoint that exists: is the source still held by it? A
/// checkpoint on the share proves only that the source was once in that state; the source agent's hold proves it still is.
/// </summary>
internal static class SourceHoldCheck
{
    public static async Task<(HoldVerdict Verdict, string Why)> CheckAsync(AgentClient sourceAgent, ContainerSelector source, string checkpointId, CancellationToken cancellationToken)
    {
        HoldInfo hold;
        try
        {
            hold = await sourceAgent.GetHoldAsync(source, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return (HoldVerdict.NotHeld, $"gone ({e.Message})");
        }
        return (Decide(hold, checkpointId), Describe(hold));
    }

    /// <summary>The pure decision (tested without an agent).</summary>
    public static HoldVerdict Decide(HoldInfo hold, string checkpointId)
    {
        if (hold.CheckpointId != checkpointId)
        {
            return HoldVerdict.NotHeld;
        }
        return hold.State switch
        {
            HoldState.HoldCommitted when hold.ContainerState == ContainerState.ContainerPaused => HoldVerdict.Restore,
            // Sealed before durable: the target verified it; the commit waits for its publication.
            HoldState.HoldSealed when hold.ContainerState == ContainerState.ContainerPaused => HoldVerdict.Restore,
            HoldState.HoldCheckpointing => HoldVerdict.Wait,
            _ => HoldVerdict.NotHeld,
        };
    }

    public static string Describe(HoldInfo hold) => hold.State == HoldState.HoldNone
        ? $"not held by any checkpoint (container {hold.ContainerState})"
        : $"held by checkpoint {hold.CheckpointId} ({hold.State}, container {hold.ContainerState})";
}
