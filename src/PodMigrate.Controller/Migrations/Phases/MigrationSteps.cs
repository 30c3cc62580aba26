using PodMigrate.Agent.V1;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>Which phase a migration is in, as far as the reconciler's loop is concerned.</summary>
internal enum MigrationStep
{
    /// <summary>A phase name this controller does not know.</summary>
    Unknown,
    Start,
    Precheck,
    Checkpoint,
    Restore,
    Verify,
    /// <summary>The deadline passed with the source touched: a rollback begins.</summary>
    DeadlineExceeded,
    Rollback,
    Commit,
}

/// <summary>The pure decisions of the migration's state machine, from the status alone (no I/O).</summary>
internal static class MigrationSteps
{
    /// <summary>
    /// What to do next with a migration that is not terminal: a rollback once begun is finished, a commit once written
    /// only goes forward, a migration past its deadline (after the precheck) rolls back, otherwise its phase's step.
    /// </summary>
    public static MigrationStep Next(PodMigrationStatus status, MigrationSettings settings, DateTimeOffset now)
    {
        if (status.RollbackReason is not null)
        {
            return MigrationStep.Rollback;
        }
        if (status.Committed == true)
        {
            return MigrationStep.Commit;
        }
        if (status.StartedAt is { } started && now - started > settings.Deadline && status.Phase is not (null or "" or MigrationPhase.Pending or MigrationPhase.Prechecking))
        {
            return MigrationStep.DeadlineExceeded;
        }
        return status.Phase switch
        {
            null or "" or MigrationPhase.Pending => MigrationStep.Start,
            MigrationPhase.Prechecking => MigrationStep.Precheck,
            MigrationPhase.Checkpointing => MigrationStep.Checkpoint,
            // The clone's creation is written after it is made: until then the restore (re)does its idempotent steps.
            MigrationPhase.Restoring or MigrationPhase.Verifying when !status.CloneCreatedAt.HasValue => MigrationStep.Restore,
            MigrationPhase.Restoring or MigrationPhase.Verifying => MigrationStep.Verify,
            _ => MigrationStep.Unknown,
        };
    }

    /// <summary>What is left of the migration's deadline for an agent's operation; at least 5 s.</summary>
    public static TimeSpan RemainingUntilDeadline(PodMigrationStatus status, MigrationSettings settings, DateTimeOffset now)
    {
        var remaining = (status.StartedAt ?? now) + settings.Deadline - now;
        return remaining > TimeSpan.FromSeconds(5) ? remaining : TimeSpan.FromSeconds(5);
    }

    /// <summary>The source container, as the source agent's calls name it.</summary>
    public static ContainerSelector SourceSelector(PodMigration migration, PodMigrationStatus status) => new()
    {
        Pod = new ContainerSelector.Types.PodContainer { Namespace = migration.Namespace, Pod = migration.Spec.PodName, Container = status.ContainerName ?? "" },
    };
}
