using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Writes the migration's status (its journal) to the API server, and the transitions every phase may take: a rollback
/// begun, a refusal. Outcomes are counted here too.
/// </summary>
internal sealed class MigrationJournal(IKubernetesApi api, MigrationEvents events, TimeProvider time, ILogger logger)
{
    public TimeProvider Time => time;

    /// <summary>Replaces the status; returns the migration as written (its new resourceVersion).</summary>
    public async Task<PodMigration> WriteAsync(PodMigration migration, CancellationToken cancellationToken)
    {
        var written = await api.ReplaceStatusAsync(PodMigration.Resource, migration.Namespace, migration.Name, migration, cancellationToken);
        written.Status ??= new PodMigrationStatus();
        return written;
    }

    public async Task<PodMigration> BeginRollbackAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
    {
        migration.Status!.BeginRollback(reason, message, time.GetUtcNow());
        ControllerLog.RollingBack(logger, migration.Namespace, migration.Name, reason, message);
        return await WriteAsync(migration, cancellationToken);
    }

    /// <summary>Refused before anything was touched: Failed, with a warning event.</summary>
    public async Task FailAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
    {
        migration.Status!.Fail(reason, message, time.GetUtcNow());
        migration = await WriteAsync(migration, cancellationToken);
        ControllerLog.Refused(logger, migration.Namespace, migration.Name, reason, message);
        RecordOutcome(migration, migration.Spec.Mode == MigrationMode.Clone, reason);
        await events.WarningAsync(migration, reason, message, cancellationToken);
    }

    public static void RecordOutcome(PodMigration migration, bool isClone, string reason)
    {
        var status = migration.Status!;
        ControllerMetrics.Record(status.Phase!, isClone ? MigrationMode.Clone : MigrationMode.Migrate, reason, status.CompletedAt - status.StartedAt, status.DowntimeValue());
    }
}
