using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// Drives one PodMigration through Pending → Prechecking → Checkpointing → Restoring → Verifying → Succeeded, or to
/// Failed (refused before anything was touched) or RolledBack (clone removed, source resumed).
/// <para>
/// Safety rests on three rules. (1) Every step is written to the status before it is taken (the checkpoint id before
/// the checkpoint, the clone's name before the clone, RollbackReason before the rollback, Committed before the source
/// is released), and every step is idempotent, so a controller that restarts anywhere resumes the same migration and
/// never takes a second checkpoint. (2) The source is checkpointed left stopped: frozen by its agent until Resume or
/// Discard, so there are never two live copies, and a rollback is a Resume away. (3) The source is resumed only after
/// the clone is confirmed gone, and released (Migrate) only after the clone has stayed Running and Ready through the
/// whole verification window; once Committed is written the migration only goes forward. (4) A checkpoint is restored
/// only while its source is still held by it (<see cref="SourceHoldCheck"/>): never an older state than the source reached.
/// </para>
/// </summary>
internal sealed class PodMigrationReconciler(
    IKubernetesApi api,
    IAgentDirectory agents,
    MigrationEvents events,
    ControllerOptions options,
    TimeProvider time,
    ILogger<PodMigrationReconciler> logger)
{
    private readonly MigrationPrecheck _precheck = new(api, agents);
    private readonly RuntimeClassRestore _runtimeClass = new(agents, logger);

    /// <summary>Reconciles the named migration, read from the server; returns when it should be looked at again (null: only on change).</summary>
    public async Task<TimeSpan?> ReconcileAsync(string ns, string name, CancellationToken cancellationToken)
    {
        PodMigration migration;
        try
        {
            migration = await api.GetAsync(PodMigration.Resource, ns, name, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
        return await ReconcileAsync(migration, cancellationToken);
    }

    /// <summary>
    /// Reconciles a migration as read (from the informer's cache: a copy this call may change, no older than anything this
    /// controller has read or written of it, see <see cref="Runtime.SeenVersions"/>).
    /// </summary>
    public async Task<TimeSpan?> ReconcileAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(migration);
        var ns = migration.Namespace;
        var name = migration.Name;
        migration.Status ??= new PodMigrationStatus();
        if (migration.Metadata.DeletionTimestamp is not null)
        {
            return await FinalizeAsync(migration, cancellationToken);
        }
        if (MigrationPhase.IsTerminal(migration.Status.Phase))
        {
            return null;
        }
        if (migration.Metadata.Finalizers?.Contains(PodMigration.Finalizer) != true)
        {
            (migration.Metadata.Finalizers ??= []).Add(PodMigration.Finalizer);
            migration = await api.ReplaceAsync(PodMigration.Resource, ns, name, migration, cancellationToken);
            migration.Status ??= new PodMigrationStatus();
        }

        MigrationSettings settings;
        try
        {
            settings = MigrationSettings.From(migration.Spec);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.InvalidArgument)
        {
            await FailAsync(migration, "InvalidSpec", e.Message, cancellationToken);
            return null;
        }
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["migration"] = $"{ns}/{name}" });
        return await DriveAsync(migration, settings, cancellationToken);
    }

    private async Task<TimeSpan?> DriveAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        while (true)
        {
            var status = migration.Status!;
            if (status.RollbackReason is not null)
            {
                return await RollbackAsync(migration, settings, cancellationToken);
            }
            if (status.Committed == true)
            {
                return await CommitAsync(migration, settings, cancellationToken);
            }
            if (status.StartedAt is { } started && time.GetUtcNow() - started > settings.Deadline && status.Phase is not (null or "" or MigrationPhase.Pending or MigrationPhase.Prechecking))
            {
                migration = await BeginRollbackAsync(migration, "DeadlineExceeded", $"the migration did not finish within its deadline of {KubeDuration.Format(settings.Deadline)}", cancellationToken);
                continue;
            }
            var step = status.Phase switch
            {
                null or "" or MigrationPhase.Pending => await StartAsync(migration, cancellationToken),
                MigrationPhase.Prechecking => await PrecheckAsync(migration, settings, cancellationToken),
                MigrationPhase.Checkpointing => await CheckpointAsync(migration, settings, cancellationToken),
                MigrationPhase.Restoring or MigrationPhase.Verifying when !status.CloneCreatedAt.HasValue
                    => await RestoreAsync(migration, settings, cancellationToken),
                MigrationPhase.Restoring or MigrationPhase.Verifying => await VerifyAsync(migration, settings, cancellationToken),
                _ => throw new PodMigrateException(ErrorKind.Internal, $"{migration}: unknown phase {status.Phase}"),
            };
            if (step.Next is null)
            {
                return step.Requeue;
            }
            migration = step.Next;
        }
    }

    private async Task<Step> StartAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        status.StartedAt ??= time.GetUtcNow();
        status.Phase = MigrationPhase.Prechecking;
        status.Message = $"checking that pod {migration.Spec.PodName} can move";
        status.ObservedGeneration = migration.Metadata.Generation;
        return Step.Continue(await WriteStatusAsync(migration, cancellationToken));
    }

    private async Task<Step> PrecheckAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        PrecheckResult result;
        try
        {
            result = await _precheck.RunAsync(migration, settings, cancellationToken);
        }
        catch (MigrationRefusedException e)
        {
            await FailAsync(migration, e.Reason, e.Message, cancellationToken);
            return Step.Done;
        }
        var status = migration.Status!;
        status.SourceNode = result.SourceNode;
        status.TargetNode = result.TargetNode;
        status.SourcePodUid = result.SourcePod.Metadata.Uid;
        status.ContainerName = result.ContainerName;
        status.CheckpointId = NewCheckpointId(migration, settings.PodName);
        status.ClonePod = settings.ClonePodName ?? ClonePods.NameFor(migration, settings.PodName);
        SetTiming(status, "precheck", Stopwatch.GetElapsedTime(started));
        SetCondition(status, "Prechecked", "True", "PrecheckPassed", $"{result.SourceNode} → {result.TargetNode}");
        status.Phase = MigrationPhase.Checkpointing;
        status.Message = $"checkpointing pod {settings.PodName} on node {result.SourceNode} (left stopped)";
        migration = await WriteStatusAsync(migration, cancellationToken);
        await events.NormalAsync(migration, "Checkpointing", $"Checkpointing pod {settings.PodName} on {result.SourceNode} for {result.TargetNode}", cancellationToken);
        await events.PodAsync(migration, settings.PodName, status.SourcePodUid, warning: false, "Checkpointing", $"Freezing and checkpointing for {(settings.IsClone ? "a clone" : "a migration")} to {result.TargetNode}", cancellationToken);
        return Step.Continue(migration);
    }

    private async Task<Step> CheckpointAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        var agent = await agents.GetAsync(status.SourceNode!, cancellationToken);
        if (status.CheckpointOperation is not null || !await CheckpointExistsAsync(agent, status.CheckpointId!, cancellationToken))
        {
            // The target prepares beside the checkpoint, following the archive as it is written (RuntimeClass path):
            // its own operation, started under status.RestoreOperation, which the restore step attaches to.
            var prepareAlongside = !settings.ThroughCheckpointImage && status.PreparedAt is null;
            var startFollow = prepareAlongside && status.RestoreOperation is null;
            if (status.FrozenAt is null || status.CheckpointOperation is null || (prepareAlongside && status.RestoreOperation is null))
            {
                // Written first: from here on a rollback must resume the source and release what the target may have
                // staged, and whoever reconciles next attaches to these operations by their ids instead of starting
                // a second checkpoint.
                status.FrozenAt ??= time.GetUtcNow();
                status.CheckpointOperation ??= AgentOperationCalls.NewId(status.CheckpointId!, "checkpoint");
                if (prepareAlongside)
                {
                    status.PreparedOn ??= status.TargetNode;
                    status.RestoreOperation ??= AgentOperationCalls.NewId(status.CheckpointId!, RuntimeClassRestore.FollowStep);
                }
                migration = await WriteStatusAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            // Not yet: the clone names the source's image by tag, and a tag that moved since the source pulled it would
            // give the clone another binary than the one CRIU restores into ("Can't open vma"). Pre-pulling needs the
            // clone pinned to the source's image digest first; the agent's PrepareRestore image field is.
            if (startFollow)
            {
                // Once, best effort and bounded: an unresponsive target must not hold up the checkpoint (the restore step
                // attaches to the id, or prepares afresh when the follower did not get there).
                await _runtimeClass.FollowAsync(migration, status, image: null, RemainingUntilDeadline(status, settings), cancellationToken);
            }
            var request = new CheckpointRequest
            {
                Container = SourceSelector(migration, status),
                Disposition = SourceDisposition.SourceLeaveStopped,
                Codec = settings.Codec,
                CheckpointId = status.CheckpointId,
                Pin = settings.RetainCheckpoint,
                Labels = { ["podmigrate.io/migration"] = $"{migration.Namespace}.{migration.Name}", ["podmigrate.io/target-node"] = status.TargetNode! },
                Timeout = Duration.FromTimeSpan(RemainingUntilDeadline(status, settings)),
            };
            var operation = await AgentOperationCalls.StartOrAttachAsync(
                agent,
                new StartOperationRequest { OperationId = status.CheckpointOperation, Checkpoint = request },
                async token => new Operation { Checkpoint = await agent.CheckpointToEndAsync(request, null, token) },
                cancellationToken);
            if (!operation.Done)
            {
                // The agent owns it: this worker goes on with other migrations and looks again later.
                status.Message = $"checkpointing pod {settings.PodName} on node {status.SourceNode}: {ProgressText(operation)}";
                return Step.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e && e.Kind != ErrorKind.AlreadyExists)
            {
                // (AlreadyExists: an earlier attempt, e.g. by a controller that died waiting for the answer, published it.)
                var retry = e.Kind is ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.Cancelled
                    || (e.Kind == ErrorKind.FailedPrecondition && await SourceBusyAsync(agent, migration, status, cancellationToken));
                if (retry)
                {
                    // This attempt is over (the agent resumed the source unless it published): the next one gets a new
                    // operation, after looking whether the checkpoint is on the share.
                    ControllerLog.SourceBusy(logger, e.Message);
                    status.CheckpointOperation = null;
                    if (prepareAlongside && status.RestoreOperation is { } follow)
                    {
                        // Its archive will not be published under this attempt: the next attempt follows afresh.
                        await _runtimeClass.CancelAsync(status, follow, cancellationToken);
                        status.RestoreOperation = null;
                    }
                    await WriteStatusAsync(migration, cancellationToken);
                    return Step.Wait(options.PollInterval);
                }
                // The agent resumes the source when a checkpoint fails; the rollback makes sure of it.
                return Step.Continue(await BeginRollbackAsync(migration, "CheckpointFailed", $"checkpoint of pod {settings.PodName} on node {status.SourceNode} failed: {e.Message}", cancellationToken));
            }
            if (operation.Checkpoint is { } result)
            {
                SetTiming(status, "checkpoint", result.Wall.ToTimeSpan());
                SetTiming(status, "frozen", result.Frozen.ToTimeSpan());
                status.SourceStoppedAt = result.FrozenAt?.ToDateTimeOffset();
                foreach (var phase in result.Timings)
                {
                    SetTiming(status, "checkpoint." + PhaseName(phase.Phase), phase.Duration.ToTimeSpan());
                }
                ControllerLog.Checkpointed(logger, status.CheckpointId!, status.SourceNode!, result.Wall.ToTimeSpan().TotalMilliseconds, result.Checkpoint.ArchiveBytes);
                if (prepareAlongside)
                {
                    // Published: the follower seals its staging now or soon (the restore step attaches to it if it still runs).
                    RecordFollowed(status, await _runtimeClass.FollowAsync(migration, status, image: null, RemainingUntilDeadline(status, settings), cancellationToken));
                }
            }
        }
        SetCondition(status, "Checkpointed", "True", "CheckpointPublished", $"checkpoint {status.CheckpointId} is on the share; the source is frozen");
        status.Phase = MigrationPhase.Restoring;
        status.Message = $"restoring checkpoint {status.CheckpointId} on node {status.TargetNode} as pod {status.ClonePod}";
        return Step.Continue(await WriteStatusAsync(migration, cancellationToken));
    }

    /// <summary>
    /// A prepare that followed the checkpoint: when it is done, its phases (the restore step then need not prepare); when it
    /// failed, a fresh ordinary prepare of the published checkpoint in the restore step; when it still runs, the restore
    /// step attaches to it.
    /// </summary>
    private void RecordFollowed(PodMigrationStatus status, Operation? following)
    {
        if (following is not { Done: true })
        {
            return;
        }
        if (following.Prepared is { } prepared && following.Error is null)
        {
            RecordPrepared(status, prepared);
            return;
        }
        status.RestoreOperation = null;
    }

    private void RecordPrepared(PodMigrationStatus status, PreparedCheckpointInfo prepared)
    {
        foreach (var phase in prepared.Timings)
        {
            SetTiming(status, "prepare." + PhaseName(phase.Phase), phase.Duration.ToTimeSpan());
        }
        SetTiming(status, "prepare", prepared.Wall.ToTimeSpan());
        status.PreparedAt = time.GetUtcNow();
    }

    private static string ProgressText(Operation operation)
        => operation.Progress is { } p ? (p.Message.Length > 0 ? p.Message : p.Phase.ToString()) + (p.BytesDone > 0 ? $" ({p.BytesDone} bytes)" : "") : "started";

    private async Task<Step> RestoreAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        if (!status.CloneCreatedAt.HasValue)
        {
            // A checkpoint on the share proves the source was once in that state; only its hold proves it still is.
            var sourceAgent = await agents.GetAsync(status.SourceNode!, cancellationToken);
            var (verdict, hold) = await SourceHoldCheck.CheckAsync(sourceAgent, SourceSelector(migration, status), status.CheckpointId!, cancellationToken);
            if (verdict == HoldVerdict.Wait)
            {
                return Step.Wait(options.PollInterval);
            }
            if (verdict == HoldVerdict.NotHeld)
            {
                return Step.Continue(await BeginRollbackAsync(migration, "SourceNotHeld",
                    $"pod {settings.PodName} on node {status.SourceNode} is {hold}, not held by checkpoint {status.CheckpointId}: restoring it could bring back an older state than the source reached", cancellationToken));
            }
        }
        if (!settings.ThroughCheckpointImage && status.PreparedAt is null)
        {
            if (status.PreparedOn is null || status.RestoreOperation is null)
            {
                // Written first: from here on a rollback releases what the target may have staged, and a requeue attaches.
                status.PreparedOn = status.TargetNode;
                status.RestoreOperation = AgentOperationCalls.NewId(status.CheckpointId!, "prepare");
                migration = await WriteStatusAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            var operation = await _runtimeClass.PrepareAsync(migration, status, RemainingUntilDeadline(status, settings), cancellationToken);
            if (!operation.Done)
            {
                return Step.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e)
            {
                if (e.Kind == ErrorKind.Cancelled || RuntimeClassRestore.IsFollow(status.RestoreOperation))
                {
                    // The target agent stopped under it, or it followed the archive and did not get there (the archive
                    // is published now): an ordinary prepare.
                    status.RestoreOperation = null;
                    await WriteStatusAsync(migration, cancellationToken);
                    return Step.Wait(options.PollInterval);
                }
                return Step.Continue(await BeginRollbackAsync(migration, "RestoreFailed", $"node {status.TargetNode} could not prepare checkpoint {status.CheckpointId}: {e.Message}", cancellationToken));
            }
            var prepared = operation.Prepared;
            foreach (var phase in prepared.Timings)
            {
                SetTiming(status, "prepare." + PhaseName(phase.Phase), phase.Duration.ToTimeSpan());
            }
            SetTiming(status, "prepare", prepared.Wall.ToTimeSpan());
            status.PreparedAt = time.GetUtcNow();
            migration = await WriteStatusAsync(migration, cancellationToken);
            status = migration.Status!;
        }
        else if (settings.ThroughCheckpointImage && status.CheckpointImage is null)
        {
            if (status.RestoreOperation is null)
            {
                status.RestoreOperation = AgentOperationCalls.NewId(status.CheckpointId!, "import");
                migration = await WriteStatusAsync(migration, cancellationToken);
                status = migration.Status!;
            }
            Operation operation;
            try
            {
                var agent = await agents.GetAsync(status.TargetNode!, cancellationToken);
                var request = new RestoreRequest
                {
                    CheckpointId = status.CheckpointId,
                    Method = RestoreMethod.RestoreCriImage,
                    ImageOnly = true,
                    Pod = new PodTarget { Namespace = migration.Namespace, Name = status.ClonePod, Container = status.ContainerName },
                    Timeout = Duration.FromTimeSpan(RemainingUntilDeadline(status, settings)),
                };
                operation = await AgentOperationCalls.StartOrAttachAsync(
                    agent,
                    new StartOperationRequest { OperationId = status.RestoreOperation, Restore = request },
                    async token => new Operation { Restore = await agent.RestoreToEndAsync(request, null, token) },
                    cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind != ErrorKind.Cancelled)
            {
                operation = new Operation { Done = true, Error = new OperationError { Code = (int)ErrorMapping.ToStatusCode(e.Kind), Message = e.Message } };
            }
            if (!operation.Done)
            {
                return Step.Wait(AgentOperationCalls.PollDelay(operation, time.GetUtcNow(), options.PollInterval));
            }
            if (AgentOperationCalls.Error(operation) is { } e2)
            {
                // The source is frozen while we wait: a target that cannot take the checkpoint now is rolled back
                // at once rather than retried.
                return Step.Continue(await BeginRollbackAsync(migration, "RestoreFailed", $"node {status.TargetNode} could not import checkpoint {status.CheckpointId}: {e2.Message}", cancellationToken));
            }
            status.CheckpointImage = operation.Restore.CheckpointImage;
            if (operation.Restore.Wall is { } importWall)
            {
                SetTiming(status, "import", importWall.ToTimeSpan());
            }
            migration = await WriteStatusAsync(migration, cancellationToken);
            status = migration.Status!;
        }

        try
        {
            if (settings.ClonePodName is not null)
            {
                await FillClonePodAsync(migration, status, settings, cancellationToken);
            }
            else
            {
                await CreateClonePodAsync(migration, status, settings, cancellationToken);
            }
        }
        catch (MigrationRefusedException e)
        {
            return Step.Continue(await BeginRollbackAsync(migration, e.Reason, e.Message, cancellationToken));
        }
        status.CloneCreatedAt = time.GetUtcNow();
        status.Message = $"waiting for clone pod {status.ClonePod} on node {status.TargetNode} to be restored, Running and Ready";
        migration = await WriteStatusAsync(migration, cancellationToken);
        await events.NormalAsync(migration, "Restoring", $"Clone pod {status.ClonePod} created on {status.TargetNode} from checkpoint {status.CheckpointId}", cancellationToken);
        await events.PodAsync(migration, status.ClonePod!, null, warning: false, "Restoring", $"Restored from checkpoint {status.CheckpointId} of pod {settings.PodName} on {status.SourceNode}", cancellationToken);
        return Step.Continue(migration);
    }

    private async Task<Pod> GetSourcePodAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        try
        {
            return await api.GetAsync(KubeResources.Pods, migration.Namespace, migration.Spec.PodName, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw new MigrationRefusedException("SourceNotFound", $"source pod {migration.Namespace}/{migration.Spec.PodName} disappeared during the migration");
        }
    }

    /// <summary>How the clone restores: the checkpoint image, or the RuntimeClass with the source container's image.</summary>
    private static CloneRestore CloneRestoreOf(PodMigrationStatus status, MigrationSettings settings, Pod? source)
        => settings.ThroughCheckpointImage
            ? new CloneRestore(status.CheckpointId!, CheckpointImage: status.CheckpointImage!)
            : new CloneRestore(status.CheckpointId!, BaseImage: source?.Spec.Containers.Find(c => c.Name == status.ContainerName)?.Image);

    private async Task CreateClonePodAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var source = await GetSourcePodAsync(migration, cancellationToken);
        var clone = ClonePods.Build(source, migration, status.ClonePod!, status.TargetNode!, status.ContainerName!, CloneRestoreOf(status, settings, source));
        try
        {
            await api.CreateAsync(KubeResources.Pods, migration.Namespace, clone, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            var existing = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
            if (existing.Metadata.Annotations?.GetValueOrDefault(MigrationAnnotations.Migration) != migration.Name)
            {
                throw new MigrationRefusedException("CloneNameTaken", $"pod {existing.Key} exists and is not this migration's clone");
            }
        }
    }

    /// <summary>
    /// clone-of: the user's pod (gated, so no kubelet ran it) gets the checkpoint image, loses the gate, and is bound
    /// to the target node. A scheduler that binds it first (nodeSelector points at the target) is fine.
    /// </summary>
    private async Task FillClonePodAsync(PodMigration migration, PodMigrationStatus status, MigrationSettings settings, CancellationToken cancellationToken)
    {
        Pod pod;
        try
        {
            pod = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw new MigrationRefusedException("ClonePodGone", $"clone-of pod {migration.Namespace}/{status.ClonePod} was deleted");
        }
        if (pod.Spec.NodeName is { Length: > 0 } bound)
        {
            if (bound != status.TargetNode)
            {
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {pod.Key} is bound to {bound}, not {status.TargetNode}");
            }
            return;
        }
        var nodeName = status.TargetNode!;
        // The user's pod, not ours: a merge patch of what we change, guarded by the version read, rather than a replace.
        var before = JsonSerializer.SerializeToNode(pod, KubeClientJsonContext.Default.Pod)!.AsObject();
        // The clone-of pod's container becomes the source's (its image), restored from the checkpoint.
        var source = settings.ThroughCheckpointImage ? null : await GetSourcePodAsync(migration, cancellationToken);
        ClonePods.Fill(pod, nodeName, status.ContainerName!, CloneRestoreOf(status, settings, source));
        pod.Spec.NodeName = null; // bound through the binding subresource below, as a scheduler does
        (pod.Metadata.Annotations ??= [])[MigrationAnnotations.CheckpointId] = status.CheckpointId!;
        pod.Metadata.Annotations[MigrationAnnotations.Migration] = migration.Name;
        var after = JsonSerializer.SerializeToNode(pod, KubeClientJsonContext.Default.Pod)!.AsObject();
        await api.PatchAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, PatchType.MergePatch,
            MergePatch.Guarded(before, after, pod.Metadata.ResourceVersion), status: false, cancellationToken);
        try
        {
            await api.BindAsync(migration.Namespace, status.ClonePod!, nodeName, cancellationToken);
        }
        catch (PodMigrateException e) when (e.IsConflict())
        {
            var now = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
            if (now.Spec.NodeName != nodeName)
            {
                throw new MigrationRefusedException("ClonePodMisplaced", $"clone-of pod {now.Key} was bound to {now.Spec.NodeName}, not {nodeName}");
            }
        }
    }

    private async Task<Step> VerifyAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        Pod clone;
        try
        {
            clone = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return Step.Continue(await BeginRollbackAsync(migration, "CloneFailed", $"clone pod {migration.Namespace}/{status.ClonePod} disappeared", cancellationToken));
        }
        var health = CloneHealth.Of(clone, status.ContainerName!);
        var now = time.GetUtcNow();
        switch (health.State)
        {
            case CloneHealthState.Failed:
                return Step.Continue(await BeginRollbackAsync(migration, "CloneFailed", health.Message, cancellationToken));
            case CloneHealthState.Ready when status.CloneReadyAt is null:
                var readyAt = health.ReadySince is { } since && since <= now ? since : now;
                status.CloneReadyAt = readyAt;
                SetTiming(status, "restore", readyAt - status.CloneCreatedAt!.Value + ParseTiming(status, "import"));
                if (!settings.ThroughCheckpointImage)
                {
                    if (status.RestoredAt is null && await _runtimeClass.RestoredAtAsync(status, cancellationToken) is { } restored)
                    {
                        status.RestoredAt = restored.At;
                        if (restored.Restore is { } criu)
                        {
                            SetTiming(status, "restore.criu", criu);
                        }
                    }
                }
                if (!settings.IsClone && RuntimeClassRestore.Downtime(status, status.RestoredAt, readyAt) is { } downtime)
                {
                    status.Downtime = KubeDuration.Format(downtime);
                }
                status.Phase = MigrationPhase.Verifying;
                status.Message = $"clone pod {status.ClonePod} is Running and Ready on {status.TargetNode}; verifying for {KubeDuration.Format(settings.VerifyWindow)}";
                SetCondition(status, "Restored", "True", "CloneReady", status.Message);
                return Step.Continue(await WriteStatusAsync(migration, cancellationToken));
            case CloneHealthState.Ready:
                var remaining = status.CloneReadyAt!.Value + settings.VerifyWindow - now;
                if (remaining > TimeSpan.Zero)
                {
                    return Step.Wait(remaining < options.PollInterval ? remaining : options.PollInterval);
                }
                SetTiming(status, "verify", now - status.CloneReadyAt.Value);
                SetCondition(status, "Verified", "True", "CloneStayedReady", $"clone pod {status.ClonePod} stayed Running and Ready for {KubeDuration.Format(settings.VerifyWindow)}");
                status.Committed = true;
                status.Message = settings.IsClone ? "clone verified: resuming the source" : "clone verified: releasing the source";
                return Step.Continue(await WriteStatusAsync(migration, cancellationToken));
            default:
                if (status.CloneReadyAt is not null)
                {
                    return Step.Continue(await BeginRollbackAsync(migration, "CloneNotReady", $"clone lost readiness during the verification window: {health.Message}", cancellationToken));
                }
                if (now - status.CloneCreatedAt!.Value > options.RestoreTimeout)
                {
                    return Step.Continue(await BeginRollbackAsync(migration, "CloneNotReady", $"{health.Message} {KubeDuration.Format(options.RestoreTimeout)} after it was created", cancellationToken));
                }
                return Step.Wait(options.PollInterval);
        }
    }

    /// <summary>Forward only: the clone is verified. Migrate ends the source and hands its owners to the clone; Clone resumes it.</summary>
    private async Task<TimeSpan?> CommitAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        var sourceAgent = await agents.GetAsync(status.SourceNode!, cancellationToken);
        var now = time.GetUtcNow();
        if (settings.IsClone)
        {
            await ReleaseSourceAsync(sourceAgent, migration, status, resume: true, cancellationToken);
            if (status.FrozenAt is { } frozenAt)
            {
                status.Downtime = KubeDuration.Format(now - frozenAt);
            }
        }
        else
        {
            Pod? source = null;
            try
            {
                source = await api.GetAsync(KubeResources.Pods, migration.Namespace, migration.Spec.PodName, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
            }
            await ReleaseSourceAsync(sourceAgent, migration, status, resume: false, cancellationToken);
            if (source is not null && source.Metadata.Uid == status.SourcePodUid)
            {
                await DeleteIgnoringNotFoundAsync(migration.Namespace, source.Metadata.Name!, source.Metadata.Uid, cancellationToken);
                if (source.Metadata.OwnerReferences is { Count: > 0 })
                {
                    await api.PatchAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, PatchType.MergePatch, ClonePods.AdoptionPatch(source), status: false, cancellationToken);
                }
            }
        }
        // The runtime consumed it; whatever is left of the staging goes (best effort: the agent also expires it).
        await _runtimeClass.ReleaseAsync(status, cancellationToken);
        if (!settings.RetainCheckpoint)
        {
            await DeleteCheckpointAsync(status, cancellationToken);
        }
        status.Phase = MigrationPhase.Succeeded;
        status.CompletedAt = now;
        if (status.StartedAt is { } started)
        {
            SetTiming(status, "total", now - started);
        }
        var what = settings.IsClone ? "cloned" : "migrated";
        status.Message = $"pod {settings.PodName} {what} from {status.SourceNode} to {status.TargetNode} as {status.ClonePod}" + (status.Downtime is { } d ? $" (downtime {d})" : "");
        SetCondition(status, "Ready", "True", "Succeeded", status.Message);
        migration = await WriteStatusAsync(migration, cancellationToken);
        await events.NormalAsync(migration, settings.IsClone ? "Cloned" : "Migrated", status.Message, cancellationToken);
        ControllerLog.Succeeded(logger, migration.Namespace, migration.Name, status.Downtime ?? "-");
        RecordOutcome(migration, settings.IsClone, "Succeeded");
        return null;
    }

    private async Task ReleaseSourceAsync(AgentClient agent, PodMigration migration, PodMigrationStatus status, bool resume, CancellationToken cancellationToken)
    {
        try
        {
            var selector = SourceSelector(migration, status);
            var state = resume
                ? (await agent.ResumeAsync(selector, cancellationToken)).SourceState
                : (await agent.DiscardAsync(selector, cancellationToken)).SourceState;
            ControllerLog.SourceReleased(logger, migration.Spec.PodName, status.SourceNode!, state.ToString());
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.FailedPrecondition)
        {
            // Not held any more: an earlier attempt released it (or, on rollback, the agent already resumed it).
            ControllerLog.SourceNotHeld(logger, migration.Spec.PodName, status.SourceNode!, e.Message);
        }
    }

    private async Task<PodMigration> BeginRollbackAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        status.RollbackReason = reason;
        status.Message = "rolling back: " + message;
        SetCondition(status, "RollingBack", "True", reason, message);
        ControllerLog.RollingBack(logger, migration.Namespace, migration.Name, reason, message);
        return await WriteStatusAsync(migration, cancellationToken);
    }

    /// <summary>Clone gone first (and confirmed gone), then the source resumed: never two live copies.</summary>
    private async Task<TimeSpan?> RollbackAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        if (status.ClonePod is not null && await CloneStillPresentAsync(migration, settings, status, cancellationToken))
        {
            return options.PollInterval;
        }
        // The clone is gone: nothing can consume the prepared staging any more.
        await _runtimeClass.ReleaseAsync(status, cancellationToken);
        if (status.FrozenAt is not null)
        {
            var agent = await agents.GetAsync(status.SourceNode!, cancellationToken);
            if (status.CheckpointOperation is { } checkpointOperation)
            {
                // A checkpoint still running is not needed any more: before its publication the agent resumes the source
                // itself; after it, the hold is resumed below.
                await AgentOperationCalls.CancelAsync(agent, checkpointOperation, cancellationToken);
            }
            // A checkpoint still running there (e.g. between its commit and its end) would take its hold after a Resume
            // refused as busy: wait for it, then resume what it holds.
            var (verdict, _) = await SourceHoldCheck.CheckAsync(agent, SourceSelector(migration, status), status.CheckpointId!, cancellationToken);
            if (verdict == HoldVerdict.Wait)
            {
                return options.PollInterval;
            }
            await ReleaseSourceAsync(agent, migration, status, resume: true, cancellationToken);
        }
        if (!settings.RetainCheckpoint && status.CheckpointId is not null && status.FrozenAt is not null)
        {
            await DeleteCheckpointAsync(status, cancellationToken);
        }
        // BeginRollbackAsync put the cause in the RollingBack condition; it survives a restart with the rest of the status.
        var reasonText = status.Conditions?.Find(c => c.Type == "RollingBack")?.Message ?? status.RollbackReason;
        status.Phase = MigrationPhase.RolledBack;
        status.CompletedAt = time.GetUtcNow();
        status.Message = $"rolled back ({status.RollbackReason}): {reasonText}; the source pod {settings.PodName} runs on {status.SourceNode}";
        SetCondition(status, "RollingBack", "False", "RolledBack", status.Message);
        SetCondition(status, "Ready", "False", status.RollbackReason!, status.Message);
        migration = await WriteStatusAsync(migration, cancellationToken);
        await events.WarningAsync(migration, "RolledBack", status.Message, cancellationToken);
        await events.PodAsync(migration, settings.PodName, status.SourcePodUid, warning: true, "MigrationRolledBack", status.Message, cancellationToken);
        RecordOutcome(migration, settings.IsClone, migration.Status!.RollbackReason!);
        return null;
    }

    /// <summary>Deletes this migration's clone and reports whether it is still there (the kubelet has not confirmed it stopped).</summary>
    private async Task<bool> CloneStillPresentAsync(PodMigration migration, MigrationSettings settings, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        Pod clone;
        try
        {
            clone = await api.GetAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
        var ours = clone.Metadata.Annotations?.GetValueOrDefault(MigrationAnnotations.Migration) == migration.Name;
        if (!ours || (settings.ClonePodName is not null && string.IsNullOrEmpty(clone.Spec.NodeName)))
        {
            // Never created by us, or a clone-of pod that was never filled: nothing runs there.
            return false;
        }
        if (clone.Metadata.DeletionTimestamp is null)
        {
            await api.DeleteAsync(KubeResources.Pods, migration.Namespace, status.ClonePod!, new DeleteOptions
            {
                GracePeriodSeconds = options.CloneDeleteGraceSeconds,
                Preconditions = new Preconditions { Uid = clone.Metadata.Uid },
            }, cancellationToken);
        }
        return true;
    }

    private async Task<TimeSpan?> FinalizeAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        if (!MigrationPhase.IsTerminal(status.Phase) && migration.Metadata.Finalizers?.Contains(PodMigration.Finalizer) == true)
        {
            MigrationSettings? settings = null;
            try
            {
                settings = MigrationSettings.From(migration.Spec);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.InvalidArgument)
            {
            }
            if (settings is not null && status.FrozenAt is not null)
            {
                if (status.Committed != true && status.RollbackReason is null)
                {
                    migration = await BeginRollbackAsync(migration, "Deleted", "the PodMigration was deleted before it finished", cancellationToken);
                }
                var again = await DriveAsync(migration, settings, cancellationToken);
                if (again is not null)
                {
                    return again;
                }
            }
        }
        var current = await api.GetAsync(PodMigration.Resource, migration.Namespace, migration.Name, cancellationToken);
        if (current.Metadata.Finalizers?.Remove(PodMigration.Finalizer) == true)
        {
            await api.ReplaceAsync(PodMigration.Resource, current.Namespace, current.Name, current, cancellationToken);
        }
        return null;
    }

    private async Task FailAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
    {
        var status = migration.Status!;
        status.Phase = MigrationPhase.Failed;
        status.Message = message;
        status.CompletedAt = time.GetUtcNow();
        SetCondition(status, "Ready", "False", reason, message);
        migration = await WriteStatusAsync(migration, cancellationToken);
        ControllerLog.Refused(logger, migration.Namespace, migration.Name, reason, message);
        RecordOutcome(migration, migration.Spec.Mode == MigrationMode.Clone, reason);
        await events.WarningAsync(migration, reason, message, cancellationToken);
    }

    private static void RecordOutcome(PodMigration migration, bool isClone, string reason)
    {
        var status = migration.Status!;
        TimeSpan? downtime = status.Downtime is { } text && KubeDuration.TryParse(text, out var value) ? value : null;
        ControllerMetrics.Record(status.Phase!, isClone ? MigrationMode.Clone : MigrationMode.Migrate, reason, status.CompletedAt - status.StartedAt, downtime);
    }

    private async Task DeleteCheckpointAsync(PodMigrationStatus status, CancellationToken cancellationToken)
    {
        // The target agent also removes the checkpoint image it imported; the source agent can still clear the share.
        foreach (var node in new[] { status.TargetNode, status.SourceNode })
        {
            if (node is null)
            {
                continue;
            }
            try
            {
                var agent = await agents.GetAsync(node, cancellationToken);
                await agent.DeleteCheckpointAsync(status.CheckpointId!, force: true, cancellationToken);
                return;
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                return;
            }
            catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
            {
                ControllerLog.CheckpointNotDeleted(logger, status.CheckpointId!, node, e.Message);
            }
        }
    }

    private async Task DeleteIgnoringNotFoundAsync(string ns, string name, string? uid, CancellationToken cancellationToken)
    {
        try
        {
            await api.DeleteAsync(KubeResources.Pods, ns, name, new DeleteOptions { Preconditions = new Preconditions { Uid = uid } }, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }

    private static async Task<bool> CheckpointExistsAsync(AgentClient agent, string checkpointId, CancellationToken cancellationToken)
    {
        try
        {
            await agent.InspectCheckpointAsync(checkpointId, verify: false, cancellationToken);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
    }

    private static async Task<bool> SourceBusyAsync(AgentClient agent, PodMigration migration, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        var list = await agent.ListContainersAsync(new ListContainersRequest { PodNamespace = migration.Namespace, PodName = migration.Spec.PodName }, cancellationToken);
        return list.Containers.Any(c => c.ContainerName == status.ContainerName && c.BusyWith.Length > 0);
    }

    private async Task<PodMigration> WriteStatusAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        var written = await api.ReplaceStatusAsync(PodMigration.Resource, migration.Namespace, migration.Name, migration, cancellationToken);
        written.Status ??= new PodMigrationStatus();
        return written;
    }

    private static ContainerSelector SourceSelector(PodMigration migration, PodMigrationStatus status) => new()
    {
        Pod = new ContainerSelector.Types.PodContainer { Namespace = migration.Namespace, Pod = migration.Spec.PodName, Container = status.ContainerName ?? "" },
    };

    private TimeSpan RemainingUntilDeadline(PodMigrationStatus status, MigrationSettings settings)
    {
        var remaining = (status.StartedAt ?? time.GetUtcNow()) + settings.Deadline - time.GetUtcNow();
        return remaining > TimeSpan.FromSeconds(5) ? remaining : TimeSpan.FromSeconds(5);
    }

    /// <summary>Lowercase letters, digits and '-' (the store's id rules), unique per migration object.</summary>
    internal static string NewCheckpointId(PodMigration migration, string podName)
    {
        var pod = new string(podName.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray()).Trim('-');
        var uid = new string((migration.Metadata.Uid ?? migration.Name).ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).ToArray());
        if (pod.Length > 40)
        {
            pod = pod[..40].TrimEnd('-');
        }
        return $"{pod}-{(uid.Length > 12 ? uid[..12] : uid)}".Trim('-');
    }

    private static string PhaseName(Phase phase) => phase.ToString().ToLowerInvariant();

    private static void SetTiming(PodMigrationStatus status, string name, TimeSpan value)
        => (status.Timings ??= new Dictionary<string, string>(StringComparer.Ordinal))[name] = KubeDuration.Format(value);

    private static TimeSpan ParseTiming(PodMigrationStatus status, string name)
        => status.Timings?.GetValueOrDefault(name) is { } text && KubeDuration.TryParse(text, out var value) ? value : TimeSpan.Zero;

    private void SetCondition(PodMigrationStatus status, string type, string value, string reason, string message)
    {
        var conditions = status.Conditions ??= [];
        var existing = conditions.Find(c => c.Type == type);
        if (existing is null)
        {
            conditions.Add(existing = new MigrationCondition { Type = type });
        }
        if (existing.Status != value)
        {
            existing.LastTransitionTime = time.GetUtcNow();
        }
        existing.Status = value;
        existing.Reason = reason;
        existing.Message = message;
    }

    private readonly record struct Step(PodMigration? Next, TimeSpan? Requeue)
    {
        public static Step Done => new(null, null);

        public static Step Continue(PodMigration next) => new(next, null);

        public static Step Wait(TimeSpan delay) => new(null, delay);
    }
}
