using System.Diagnostics;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>
/// Prechecking → Checkpointing, or Failed when the migration is refused (<see cref="MigrationPrecheck"/>: nothing was
/// touched). The checkpoint id and the clone's name are chosen here and written before either is made.
/// </summary>
internal sealed class PrecheckPhase(MigrationPrecheck precheck, MigrationJournal journal, MigrationEvents events) : IMigrationPhase
{
    public async Task<PhaseOutcome> RunAsync(MigrationContext context, CancellationToken cancellationToken)
    {
        var (migration, settings) = context;
        var started = Stopwatch.GetTimestamp();
        PrecheckResult result;
        try
        {
            result = await precheck.RunAsync(migration, settings, cancellationToken);
        }
        catch (MigrationRefusedException e)
        {
            await journal.FailAsync(migration, e.Reason, e.Message, cancellationToken);
            return PhaseOutcome.Done;
        }
        var status = migration.Status!;
        status.Prechecked(result, NewCheckpointId(migration, settings.PodName), settings.ClonePodName ?? ClonePods.NameFor(migration, settings.PodName),
            settings.PodName, Stopwatch.GetElapsedTime(started), journal.Time.GetUtcNow());
        migration = await journal.WriteAsync(migration, cancellationToken);
        await events.NormalAsync(migration, "Checkpointing", $"Checkpointing pod {settings.PodName} on {result.SourceNode} for {result.TargetNode}", cancellationToken);
        await events.PodAsync(migration, settings.PodName, status.SourcePodUid, warning: false, "Checkpointing", $"Freezing and checkpointing for {(settings.IsClone ? "a clone" : "a migration")} to {result.TargetNode}", cancellationToken);
        return PhaseOutcome.Continue(migration);
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
}
