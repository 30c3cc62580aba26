using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>The migration's deadline passed before it was committed: a rollback begins (<see cref="MigrationStep.DeadlineExceeded"/>).</summary>
internal sealed class DeadlinePhase(MigrationJournal journal) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
        => PhaseOutcome.Continue(await journal.BeginRollbackAsync(context.Migration, "DeadlineExceeded",
            $"the migration did not finish within its deadline of {KubeDuration.Format(context.Settings.Deadline)}", cancellationToken));
}
