using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Operations;

/// <summary>
/// Lets frozen sources run again or ends them, and keeps the journal of held sources in step: a source leaves the
/// journal only once it runs again (or is gone).
/// </summary>
internal sealed class SourceControl(ContainerdConnection containerd, ContainerResolver resolver, SourceJournal journal, OperationGate gate, ILogger<SourceControl> logger)
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
        if (task.Status == global::Containerd.V1.Types.Status.Paused)
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
            if (task.Status == global::Containerd.V1.Types.Status.Stopped)
            {
                return;
            }
            if (task.Status is global::Containerd.V1.Types.Status.Paused or global::Containerd.V1.Types.Status.Pausing)
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
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromMilliseconds(500).Ticks));
        }
    }

    /// <summary>Resume RPC: only a source this agent holds stopped.</summary>
    public async Task<SourceState> ResumeHeldAsync(ContainerSelector selector, CancellationToken cancellationToken)
    {
        var (source, held) = await HeldAsync(selector, cancellationToken);
        using var busy = gate.Enter(source.Id, "resume");
        await ResumeAsync(source, held.CheckpointId, cancellationToken);
        return SourceState.SourceRunning;
    }

    /// <summary>Discard RPC: only a source this agent holds stopped.</summary>
    public async Task<SourceState> DiscardHeldAsync(ContainerSelector selector, CancellationToken cancellationToken)
    {
        var (source, held) = await HeldAsync(selector, cancellationToken);
        using var busy = gate.Enter(source.Id, "discard");
        await DiscardAsync(source, held.CheckpointId, cancellationToken);
        return SourceState.SourceGone;
    }

    private async Task<(SourceContainer Source, HeldSource Held)> HeldAsync(ContainerSelector selector, CancellationToken cancellationToken)
    {
        var source = await resolver.ResolveAsync(selector, cancellationToken);
        var held = await journal.FindAsync(source.Id, cancellationToken);
        if (held is null || held.Reason != HoldReason.LeftStopped)
        {
            throw PodMigrateException.FailedPrecondition($"container {source.DisplayName} is not held stopped by a checkpoint of this agent");
        }
        return (source, held);
    }
}
