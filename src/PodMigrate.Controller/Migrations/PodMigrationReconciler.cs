using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Migrations.Phases;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// Drives one PodMigration through Pending → Prechecking → Checkpointing → Restoring → Verifying → Succeeded, or to
/// Failed (refused before anything was touched) or RolledBack (clone removed, source resumed). This is the loop:
/// <see cref="MigrationSteps.Next"/> picks the step from the status, its <see cref="IMigrationPhase"/> runs and writes
/// the status, and the loop goes on until a phase waits or the migration ends.
/// <para>
/// Safety rests on four rules. (1) Every step is written to the status before it is taken (the checkpoint id before
/// the checkpoint, the clone's name before the clone, RollbackReason before the rollback, Committed before the source
/// is released), and every step is idempotent, so a controller that restarts anywhere resumes the same migration and
/// never takes a second checkpoint. (2) The source is checkpointed left stopped: frozen by its agent until Resume or
/// Discard, so there are never two live copies, and a rollback is a Resume away. (3) The source is resumed only after
/// the clone is confirmed gone, and released (Migrate) only after the clone has stayed Running and Ready through the
/// whole verification window; once Committed is written the migration only goes forward. (4) A checkpoint is restored
/// only while its source is still held by it (<see cref="SourceHoldCheck"/>): never an older state than the source reached.
/// </para>
/// </summary>
internal sealed class PodMigrationReconciler
{
    private readonly IKubernetesApi _api;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly MigrationJournal _journal;
    private readonly Dictionary<MigrationStep, IMigrationPhase> _phases;

    /// <param name="podCache">The pod informer the source and clone pods are read from (see <see cref="CacheFirstReader{T}"/>); null: every read a GET.</param>
    /// <param name="wakeups">Queues a migration when an agent operation it waits for ends (null: polls alone).</param>
    public PodMigrationReconciler(IKubernetesApi api, IAgentDirectory agents, MigrationEvents events, ControllerOptions options, TimeProvider time,
        ILogger<PodMigrationReconciler> logger, Informer<V1Pod>? podCache = null, OperationWakeups? wakeups = null)
    {
        _api = api;
        _time = time;
        _logger = logger;
        _journal = new MigrationJournal(api, events, time, logger);
        var runtimeClass = new RuntimeClassRestore(agents, logger);
        var release = new SourceRelease(agents, logger);
        var pods = new CacheFirstReader<V1Pod>(api, KubeResources.V1Pods, podCache);
        var publication = new CheckpointPublication(agents, wakeups);
        _phases = new()
        {
            [MigrationStep.Start] = new StartPhase(_journal),
            [MigrationStep.Precheck] = new PrecheckPhase(new MigrationPrecheck(api, pods, agents), _journal, events),
            [MigrationStep.Checkpoint] = new CheckpointPhase(agents, runtimeClass, _journal, wakeups, options, logger),
            [MigrationStep.Restore] = new RestorePhase(agents, runtimeClass, new ClonePodWriter(api, pods), _journal, events, wakeups, options),
            [MigrationStep.Verify] = new VerifyPhase(pods, runtimeClass, publication, _journal, options),
            [MigrationStep.DeadlineExceeded] = new DeadlinePhase(_journal),
            [MigrationStep.Rollback] = new RollbackPhase(api, agents, runtimeClass, publication, release, _journal, events, options),
            [MigrationStep.Commit] = new CommitPhase(api, pods, agents, runtimeClass, release, _journal, events, logger),
        };
    }

    /// <summary>Reconciles the named migration, read from the server; returns when it should be looked at again (null: only on change).</summary>
    public async Task<TimeSpan?> ReconcileAsync(string ns, string name, CancellationToken cancellationToken)
    {
        PodMigration migration;
        try
        {
            migration = await _api.GetAsync(PodMigration.Resource, ns, name, cancellationToken);
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
            migration = await _api.ReplaceAsync(PodMigration.Resource, ns, name, migration, cancellationToken);
            migration.Status ??= new PodMigrationStatus();
        }

        MigrationSettings settings;
        try
        {
            settings = MigrationSettings.From(migration.Spec);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.InvalidArgument)
        {
            await _journal.FailAsync(migration, "InvalidSpec", e.Message, cancellationToken);
            return null;
        }
        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["migration"] = $"{ns}/{name}" });
        return await DriveAsync(migration, settings, cancellationToken);
    }

    /// <summary>Runs the phases one after another until one waits or the migration ends; persisting is each phase's first act.</summary>
    private async Task<TimeSpan?> DriveAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        while (true)
        {
            var step = MigrationSteps.Next(migration.Status!, settings, _time.GetUtcNow());
            if (!_phases.TryGetValue(step, out var phase))
            {
                throw new PodMigrateException(ErrorKind.Internal, $"{migration}: unknown phase {migration.Status!.Phase}");
            }
            var outcome = await phase.RunAsync(new MigrationContext(migration, settings), cancellationToken);
            if (outcome.Next is null)
            {
                return outcome.Requeue;
            }
            migration = outcome.Next;
        }
    }

    /// <summary>A deleted migration that touched the source is rolled back (or, once committed, finished) before its finalizer goes.</summary>
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
                    migration = await _journal.BeginRollbackAsync(migration, "Deleted", "the PodMigration was deleted before it finished", cancellationToken);
                }
                var again = await DriveAsync(migration, settings, cancellationToken);
                if (again is not null)
                {
                    return again;
                }
            }
        }
        // A GET, once per deletion: the phases driven above wrote the status, and the replace needs the version they left.
        var current = await _api.GetAsync(PodMigration.Resource, migration.Namespace, migration.Name, cancellationToken);
        if (current.Metadata.Finalizers?.Remove(PodMigration.Finalizer) == true)
        {
            await _api.ReplaceAsync(PodMigration.Resource, current.Namespace, current.Name, current, cancellationToken);
        }
        return null;
    }
}
