namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// One step of a PodMigration's state machine (<see cref="MigrationSteps.Next"/> picks which): it reads the migration as
/// it stands, does its I/O, records each step in the status before taking it, and says how the reconciler goes on.
/// </summary>
internal interface IMigrationPhase
{
    Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken);
}

/// <summary>The migration a phase runs on (as last read or written) and its validated spec.</summary>
internal sealed record MigrationContext(PodMigration Migration, MigrationSettings Settings)
{
    public PodMigrationStatus Status => Migration.Status!;
}

/// <summary>
/// How the reconciler goes on after a phase: with the migration as the phase wrote it (<see cref="Continue"/>: the next
/// phase at once), or by returning (<see cref="Wait"/>: look again after a delay; <see cref="Done"/>: only on a change).
/// </summary>
internal readonly record struct PhaseOutcome(PodMigration? Next, TimeSpan? Requeue)
{
    public static PhaseOutcome Done => new(null, null);

    public static PhaseOutcome Continue(PodMigration next) => new(next, null);

    public static PhaseOutcome Wait(TimeSpan delay) => new(null, delay);
}
