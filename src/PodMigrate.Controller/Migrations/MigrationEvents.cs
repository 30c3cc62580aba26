using PodMigrate.Controller.Runtime;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Migrations;

/// <summary>Events about a migration, on the PodMigration (what `kubectl describe podmigration` shows).</summary>
internal sealed class MigrationEvents(EventRecorder recorder)
{
    public const string Component = "podmigrate-controller";

    public Task NormalAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => recorder.NormalAsync(Reference(migration), reason, message, cancellationToken);

    public Task WarningAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => recorder.WarningAsync(Reference(migration), reason, message, cancellationToken);

    private static ObjectReference Reference(PodMigration migration) => new()
    {
        ApiVersion = $"{PodMigration.Group}/{PodMigration.Version}",
        Kind = PodMigration.KindName,
        Namespace = migration.Namespace,
        Name = migration.Name,
        Uid = migration.Metadata.Uid,
        ResourceVersion = migration.Metadata.ResourceVersion,
    };
}
