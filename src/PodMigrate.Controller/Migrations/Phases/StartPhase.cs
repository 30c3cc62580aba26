namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>Pending → Prechecking: the start time (kept across attempts) and the generation observed.</summary>
internal sealed class StartPhase(MigrationJournal journal) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var migration = context.Migration;
        migration.Status!.Start(migration.Spec.PodName, migration.Metadata.Generation, journal.Time.GetUtcNow());
        return PhaseOutcome.Continue(await journal.WriteAsync(migration, cancellationToken));
    }
}
