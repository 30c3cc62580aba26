using PodMigrate.Agent.V1;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// The status's own bookkeeping: each transition of the migration sets the phase, the message people read, the conditions
/// (metav1.Condition: the transition time moves only when the value does), the timings and the downtime in one place, so
/// the phases (<see cref="Phases.IMigrationPhase"/>) only decide and do I/O. Pure: the caller passes the time.
/// </summary>
public sealed partial class PodMigrationStatus
{
    internal MigrationCondition? Condition(string type) => Conditions?.FirstOrDefault(c => c.Type == type);

    internal void SetCondition(string type, string value, string reason, string message, DateTimeOffset now)
    {
        var conditions = Conditions ??= [];
        var existing = conditions.Find(c => c.Type == type);
        if (existing is null)
        {
            conditions.Add(existing = new MigrationCondition { Type = type });
        }
        if (existing.Status != value)
        {
            existing.LastTransitionTime = now;
        }
        existing.Status = value;
        existing.Reason = reason;
        existing.Message = message;
    }

    internal void SetTiming(string name, TimeSpan value)
        => (Timings ??= new Dictionary<string, string>(StringComparer.Ordinal))[name] = KubeDuration.Format(value);

    /// <summary>A recorded timing; zero when absent or unreadable.</summary>
    internal TimeSpan Timing(string name)
        => Timings?.GetValueOrDefault(name) is { } text && KubeDuration.TryParse(text, out var value) ? value : TimeSpan.Zero;

    /// <summary><see cref="Downtime"/> as a duration, when recorded.</summary>
    internal TimeSpan? DowntimeValue() => Downtime is { } text && KubeDuration.TryParse(text, out var value) ? value : null;

    /// <summary>An agent's per-phase durations as timings "<paramref name="prefix"/>.&lt;phase&gt;".</summary>
    internal void SetPhaseTimings(string prefix, IEnumerable<PhaseTiming> timings)
    {
        foreach (var phase in timings)
        {
            SetTiming(prefix + "." + phase.Phase.ToString().ToLowerInvariant(), phase.Duration.ToTimeSpan());
        }
    }

    /// <summary>Pending → Prechecking; the start time is kept from an earlier attempt.</summary>
    internal void Start(string podName, long? generation, DateTimeOffset now)
    {
        StartedAt ??= now;
        Phase = MigrationPhase.Prechecking;
        Message = $"checking that pod {podName} can move";
        ObservedGeneration = generation;
    }

    /// <summary>Prechecking → Checkpointing, with what the precheck chose.</summary>
    internal void Prechecked(PrecheckResult result, string checkpointId, string clonePod, string podName, TimeSpan took, DateTimeOffset now)
    {
        SourceNode = result.SourceNode;
        TargetNode = result.TargetNode;
        SourcePodUid = result.SourcePod.Metadata.Uid;
        ContainerName = result.ContainerName;
        SourceImage = ClonePods.PinnedImage(result.SourcePod, result.ContainerName);
        CheckpointId = checkpointId;
        ClonePod = clonePod;
        SetTiming("precheck", took);
        SetCondition("Prechecked", "True", "PrecheckPassed", $"{result.SourceNode} → {result.TargetNode}", now);
        Phase = MigrationPhase.Checkpointing;
        Message = $"checkpointing pod {podName} on node {result.SourceNode} (left stopped)";
    }

    /// <summary>What the source agent reported with its checkpoint: durations and the instant the source stopped.</summary>
    internal void RecordCheckpoint(CheckpointResult result, DateTimeOffset now)
    {
        PublishedAt ??= now;
        SetTiming("checkpoint", result.Wall.ToTimeSpan());
        SetTiming("frozen", result.Frozen.ToTimeSpan());
        SourceStoppedAt = result.FrozenAt?.ToDateTimeOffset();
        SetPhaseTimings("checkpoint", result.Timings);
    }

    /// <summary>
    /// The checkpoint is sealed on the share and the target prepared it before it was durable: the migration goes on,
    /// and the commit waits for its publication.
    /// </summary>
    internal void RecordSealed(DateTimeOffset? frozenAt, DateTimeOffset now)
    {
        SealedAt = now;
        SourceStoppedAt ??= frozenAt;
    }

    /// <summary>Sealed early and not yet seen published: the commit must wait for the publication.</summary>
    internal bool AwaitsPublication => SealedAt is not null && PublishedAt is null;

    /// <summary>Checkpointing → Restoring.</summary>
    internal void Checkpointed(DateTimeOffset now)
    {
        if (AwaitsPublication)
        {
            SetCondition("Checkpointed", "True", "CheckpointSealed",
                $"checkpoint {CheckpointId} is sealed on the share and prepared on {TargetNode}; it is made durable before the commit; the source is frozen", now);
        }
        else
        {
            SetCondition("Checkpointed", "True", "CheckpointPublished", $"checkpoint {CheckpointId} is on the share; the source is frozen", now);
        }
        Phase = MigrationPhase.Restoring;
        Message = $"restoring checkpoint {CheckpointId} on node {TargetNode} as pod {ClonePod}";
    }

    /// <summary>The target agent had the checkpoint prepared (RuntimeClass restores).</summary>
    internal void RecordPrepared(PreparedCheckpointInfo prepared, DateTimeOffset now)
    {
        SetPhaseTimings("prepare", prepared.Timings);
        SetTiming("prepare", prepared.Wall.ToTimeSpan());
        PreparedAt = now;
    }

    internal void CloneCreated(DateTimeOffset now)
    {
        CloneCreatedAt = now;
        Message = $"waiting for clone pod {ClonePod} on node {TargetNode} to be restored, Running and Ready";
    }

    /// <summary>The clone was first seen Running and Ready at <paramref name="readyAt"/>: the restore took until then.</summary>
    internal void CloneReady(DateTimeOffset readyAt)
    {
        CloneReadyAt = readyAt;
        SetTiming("restore", readyAt - CloneCreatedAt!.Value + Timing("import"));
    }

    /// <summary>Restoring → Verifying once the clone is Ready (<see cref="CloneReady"/>), with a migration's downtime.</summary>
    internal void EnterVerifying(bool isClone, TimeSpan verifyWindow, DateTimeOffset now)
    {
        if (!isClone && MigrationDowntime(RestoredAt, CloneReadyAt!.Value) is { } downtime)
        {
            Downtime = KubeDuration.Format(downtime);
        }
        Phase = MigrationPhase.Verifying;
        Message = $"clone pod {ClonePod} is Running and Ready on {TargetNode}; verifying for {KubeDuration.Format(verifyWindow)}";
        SetCondition("Restored", "True", "CloneReady", Message, now);
    }

    /// <summary>
    /// The workload's downtime: from the instant the source stopped executing (its agent's freeze instant, else when the
    /// controller asked for the checkpoint) to the instant the restored process executed again (the runtime's record,
    /// else the clone's readiness, which is later: never under-reported).
    /// </summary>
    internal TimeSpan? MigrationDowntime(DateTimeOffset? restoredAt, DateTimeOffset readyAt)
    {
        var stoppedAt = SourceStoppedAt ?? FrozenAt;
        return stoppedAt is { } from ? (restoredAt ?? readyAt) - from : null;
    }

    /// <summary>The clone stayed Ready through the window: Committed, from here on only forward.</summary>
    internal void Verified(bool isClone, TimeSpan verifyWindow, DateTimeOffset now)
    {
        SetTiming("verify", now - CloneReadyAt!.Value);
        SetCondition("Verified", "True", "CloneStayedReady", $"clone pod {ClonePod} stayed Running and Ready for {KubeDuration.Format(verifyWindow)}", now);
        Committed = true;
        Message = isClone ? "clone verified: resuming the source" : "clone verified: releasing the source";
    }

    /// <summary>A clone's downtime: the source ran again when it was resumed, now.</summary>
    internal void SourceResumed(DateTimeOffset now)
    {
        if (FrozenAt is { } frozenAt)
        {
            Downtime = KubeDuration.Format(now - frozenAt);
        }
    }

    internal void Succeed(string podName, bool isClone, DateTimeOffset now)
    {
        Phase = MigrationPhase.Succeeded;
        CompletedAt = now;
        if (StartedAt is { } started)
        {
            SetTiming("total", now - started);
        }
        var what = isClone ? "cloned" : "migrated";
        Message = $"pod {podName} {what} from {SourceNode} to {TargetNode} as {ClonePod}" + (Downtime is { } d ? $" (downtime {d})" : "");
        SetCondition("Ready", "True", "Succeeded", Message, now);
    }

    /// <summary>Refused before anything was touched.</summary>
    internal void Fail(string reason, string message, DateTimeOffset now)
    {
        Phase = MigrationPhase.Failed;
        Message = message;
        CompletedAt = now;
        SetCondition("Ready", "False", reason, message, now);
    }

    /// <summary>The rollback's cause, in <see cref="RollbackReason"/> and the RollingBack condition, which a restart keeps.</summary>
    internal void BeginRollback(string reason, string message, DateTimeOffset now)
    {
        RollbackReason = reason;
        Message = "rolling back: " + message;
        SetCondition("RollingBack", "True", reason, message, now);
    }

    /// <summary>Clone gone, source resumed.</summary>
    internal void RolledBack(string podName, DateTimeOffset now)
    {
        var reasonText = Condition("RollingBack")?.Message ?? RollbackReason;
        Phase = MigrationPhase.RolledBack;
        CompletedAt = now;
        Message = $"rolled back ({RollbackReason}): {reasonText}; the source pod {podName} runs on {SourceNode}";
        SetCondition("RollingBack", "False", "RolledBack", Message, now);
        SetCondition("Ready", "False", RollbackReason!, Message, now);
    }
}
