using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Operations;

/// <summary>
/// The sources a checkpoint left frozen (held): lets them run again or ends them, and keeps the journal of held sources
/// in step: a source leaves the journal only once it runs again (or is gone).
/// </summary>
internal sealed class HeldSources(
    ContainerdConnection containerd, ContainerResolver resolver, SourceJournal journal, OperationGate gate, ICheckpointStore store, ILogger<HeldSources> logger)
{
    /// <summary>
    /// Compensations run on their own bound, not the caller's token, which may be what was cancelled. Generous: the runc
    /// shim serializes a resume behind a dump still running (e.g. of a dead agent), which may take minutes for large memory.
    /// </summary>
    private static readonly TimeSpan CompensationTimeout = TimeSpan.FromMinutes(3);

    private readonly ContainerdTasks _tasks = new(containerd);

    public async Task ResumeAsync(SourceContainer source, string checkpointId, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(CompensationTimeout);
        var task = await _tasks.GetAsync(source.Id, bounded.Token);
        if (task.State == TaskState.Paused)
        {
            await _tasks.ResumeAsync(source.Id, bounded.Token);
        }
        await journal.RemoveAsync(source.Id, bounded.Token);
        AgentLog.SourceResumed(logger, source.DisplayName, checkpointId);
    }

    /// <summary>After a failed checkpoint: the source runs again whatever happened; failing that, it stays journaled for recovery.</summary>
    public async Task ReleaseAfterFailureAsync(SourceContainer source, string checkpointId)
    {
        try
        {
            await ResumeAsync(source, checkpointId, CancellationToken.None);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            await journal.RemoveAsync(source.Id, CancellationToken.None);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException or IOException)
        {
            AgentLog.ResumeFailed(logger, e, source.DisplayName, checkpointId);
        }
    }

    /// <summary>Kills the source's task and waits for it: the checkpoint is now its only copy.</summary>
    public async Task DiscardAsync(SourceContainer source, string checkpointId, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(CompensationTimeout);
        try
        {
            // SIGKILL reaches a frozen task only once it thaws; it never runs a user instruction in between.
            await _tasks.KillAsync(source.Id, signal: 9, all: true, bounded.Token);
            await ThawUntilGoneAsync(source.Id, bounded.Token);
            if (!source.IsPodContainer)
            {
                // Pods' tasks belong to CRI, which reaps them; a bare container's task is ours to delete.
                await _tasks.DeleteAsync(source.Id, bounded.Token);
            }
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
        await journal.RemoveAsync(source.Id, bounded.Token);
        AgentLog.SourceDiscarded(logger, source.DisplayName, checkpointId);
    }

    /// <summary>
    /// Until the killed task has exited: thawed while it is frozen (the freezer may report a transitional state for a
    /// moment, in which runc refuses to resume: try again), polled rather than waited on, because CRI reaps its tasks
    /// as they exit and the shim goes away under a Wait.
    /// </summary>
    private async Task ThawUntilGoneAsync(string containerId, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            var task = await _tasks.GetAsync(containerId, cancellationToken);
            if (task.State == TaskState.Stopped)
            {
                return;
            }
            if (task.State is TaskState.Paused or TaskState.Pausing)
            {
                try
                {
                    await _tasks.ResumeAsync(containerId, cancellationToken);
                }
                catch (PodMigrateException e) when (e.Kind is ErrorKind.Internal or ErrorKind.FailedPrecondition)
                {
                }
            }
            await Task.Delay(delay, cancellationToken);
            delay = ExponentialBackoff.Doubled(delay, TimeSpan.FromMilliseconds(500));
        }
    }

    /// <summary>Resume RPC: only a source this agent holds stopped (for <paramref name="checkpointId"/>, when one is named).</summary>
    public async Task<SourceState> ResumeHeldAsync(ContainerSelector selector, string? checkpointId, CancellationToken cancellationToken)
    {
        var (source, held) = await HeldAsync(selector, checkpointId, "resumed", cancellationToken);
        using var busy = gate.Enter(source.Id, "resume");
        await ResumeAsync(source, held.CheckpointId, cancellationToken);
        return SourceState.SourceRunning;
    }

    /// <summary>Discard RPC: only a source this agent holds stopped (for <paramref name="checkpointId"/>, when one is named).</summary>
    public async Task<SourceState> DiscardHeldAsync(ContainerSelector selector, string? checkpointId, CancellationToken cancellationToken)
    {
        var (source, held) = await HeldAsync(selector, checkpointId, "discarded", cancellationToken);
        using var busy = gate.Enter(source.Id, "discard");
        if (held.Reason == HoldReason.Sealed && await PublishedAsync(held.CheckpointId, cancellationToken) != true)
        {
            // Sealed before durable and not (known to be) published: the source is the only durable copy of its state.
            throw PodMigrateException.FailedPrecondition(
                $"container {source.DisplayName} is held by checkpoint {held.CheckpointId}, which was sealed but is not published on the share: not discarded (Resume it, or wait for the publication)");
        }
        await DiscardAsync(source, held.CheckpointId, cancellationToken);
        return SourceState.SourceGone;
    }

    /// <summary>
    /// Whether <paramref name="checkpointId"/> is on the share: true or false, or null when the share cannot say (then
    /// the caller must assume it may be published and keep the source held).
    /// </summary>
    public async Task<bool?> PublishedAsync(string checkpointId, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(CompensationTimeout);
        try
        {
            await store.GetAsync(CheckpointId.Parse(checkpointId), bounded.Token);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.DataLoss)
        {
            // A manifest is there (the commit happened) even if the archive does not read back.
            return true;
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            AgentLog.PublicationUnknown(logger, e, checkpointId);
            return null;
        }
    }

    /// <summary>GetHold RPC: what holds the container, as the journal and containerd say.</summary>
    public async Task<HoldInfo> GetHoldAsync(ContainerSelector selector, CancellationToken cancellationToken)
    {
        var source = await resolver.ResolveAsync(selector, cancellationToken);
        var task = await _tasks.GetAsync(source.Id, cancellationToken);
        var info = new HoldInfo
        {
            ContainerState = ContainerStates.Of(task.State),
            State = HoldState.HoldNone,
        };
        if (await journal.FindAsync(source.Id, cancellationToken) is not { } held)
        {
            return info;
        }
        info.CheckpointId = held.CheckpointId;
        info.State = held.Reason switch
        {
            // A target may restore from it already, while its checkpoint is made durable (a Resume or Discard waits for that).
            HoldReason.Sealed when await PublishedAsync(held.CheckpointId, cancellationToken) != true => HoldState.HoldSealed,
            // An operation still running on it (the end of a checkpoint, a Resume, a Discard): ask again when it is done.
            _ when gate.HolderOf(source.Id) is not null => HoldState.HoldCheckpointing,
            HoldReason.Sealed => HoldState.HoldCommitted,
            HoldReason.LeftStopped => HoldState.HoldCommitted,
            // Published, or the share cannot say: held either way, and Resume or Discard may release it.
            HoldReason.Publishing when await PublishedAsync(held.CheckpointId, cancellationToken) != false => HoldState.HoldCommitted,
            _ => HoldState.HoldCheckpointing,
        };
        return info;
    }

    private async Task<(SourceContainer Source, HeldSource Held)> HeldAsync(ContainerSelector selector, string? checkpointId, string action, CancellationToken cancellationToken)
    {
        var source = await resolver.ResolveAsync(selector, cancellationToken);
        var held = await journal.FindAsync(source.Id, cancellationToken);
        // Publishing outside an operation (the gate below refuses a running one): an agent restarted when the share could
        // not say whether the checkpoint was published; the source is held, and Resume or Discard decides.
        if (held is null || held.Reason == HoldReason.Checkpointing)
        {
            throw PodMigrateException.FailedPrecondition($"container {source.DisplayName} is not held stopped by a checkpoint of this agent");
        }
        if (!string.IsNullOrEmpty(checkpointId) && held.CheckpointId != checkpointId)
        {
            // A caller that names its checkpoint speaks for one migration; the hold may belong to a newer one.
            throw PodMigrateException.FailedPrecondition(
                $"container {source.DisplayName} is held for checkpoint {held.CheckpointId}, not {checkpointId}: not {action}");
        }
        return (source, held);
    }
}
