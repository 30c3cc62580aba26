using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Operations;

/// <summary>
/// At start-up, before the API serves: releases what an agent that died mid-operation left behind. Sources frozen
/// by an unfinished checkpoint are resumed; sources left stopped on purpose stay stopped (their controller decides), and
/// so do sources whose checkpoint was being published when the agent died and is on the share (the publication is the
/// commit) or may be (the share cannot say); node-local staging directories, unsealed or expired prepared checkpoints
/// and stale staging on the share are removed.
/// </summary>
internal sealed class AgentRecovery(
    IOptions<AgentOptions> options,
    SourceJournal journal,
    HeldSources sources,
    ContainerdConnection containerd,
    ICheckpointStore store,
    Preparing.PreparedCheckpoints prepared,
    ILogger<AgentRecovery> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var tasks = new ContainerdTasks(containerd);
        foreach (var held in await journal.EntriesAsync(cancellationToken))
        {
            if (held.Reason == HoldReason.LeftStopped)
            {
                AgentLog.KeepingLeftStopped(logger, held.ContainerId, held.CheckpointId);
                continue;
            }
            if (held.Reason == HoldReason.Sealed)
            {
                // A target may run from it: never resumed here. Published: held as any committed checkpoint's source.
                if (await sources.PublishedAsync(held.CheckpointId, cancellationToken) == true)
                {
                    AgentLog.KeepingCommitted(logger, held.ContainerId, held.CheckpointId);
                    await journal.RecordAsync(held with { Reason = HoldReason.LeftStopped }, cancellationToken);
                }
                else
                {
                    AgentLog.KeepingSealed(logger, held.ContainerId, held.CheckpointId);
                }
                continue;
            }
            if (held.Reason == HoldReason.Publishing && await sources.PublishedAsync(held.CheckpointId, cancellationToken) is var published && published != false)
            {
                AgentLog.KeepingCommitted(logger, held.ContainerId, held.CheckpointId);
                if (published == true)
                {
                    await journal.RecordAsync(held with { Reason = HoldReason.LeftStopped }, cancellationToken);
                }
                continue;
            }
            AgentLog.RecoveringFrozen(logger, held.ContainerId, held.CheckpointId);
            try
            {
                var task = await tasks.GetAsync(held.ContainerId, cancellationToken);
                if (task.State == TaskState.Paused)
                {
                    await tasks.ResumeAsync(held.ContainerId, cancellationToken);
                }
                await journal.RemoveAsync(held.ContainerId, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                await journal.RemoveAsync(held.ContainerId, cancellationToken);
            }
            catch (PodMigrateException e)
            {
                AgentLog.RecoveryFailed(logger, e, held.ContainerId);
            }
        }

        var staging = options.Value.StagingPath;
        if (Directory.Exists(staging))
        {
            foreach (var directory in Directory.EnumerateDirectories(staging))
            {
                Directory.Delete(directory, recursive: true);
                AgentLog.RemovedStaging(logger, directory);
            }
        }
        // Prepared checkpoints: unsealed ones were being prepared by the agent that died; expired ones were never consumed.
        prepared.Sweep(startup: true);
        // Other nodes' agents may be writing to the share's staging right now: only what is older than any operation may run.
        await store.CleanupStagingAsync(options.Value.OperationTimeout * 2, cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
