using k8s.Models;
using PodMigrate.Controller.Runtime;

namespace PodMigrate.Controller.Migrations;

/// <summary>Events about a migration, on the PodMigration (what `kubectl describe podmigration` shows).</summary>
internal sealed class MigrationEvents(EventRecorder recorder)
{
    public const string Component = "podmigrate-controller";

    public Task NormalAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => recorder.NormalAsync(Reference(migration), reason, message, cancellationToken);

    public Task WarningAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => recorder.WarningAsync(Reference(migration), reason, message, cancellationToken);

    /// <summary>An event on a pod the migration acts on (the source, the clone), so `kubectl describe pod` tells the story too.</summary>
    public Task PodAsync(PodMigration migration, string podName, string? podUid, bool warning, string reason, string message, CancellationToken cancellationToken)
        => recorder.RecordAsync(new V1ObjectReference { ApiVersion = "v1", Kind = "Pod", NamespaceProperty = migration.Namespace, Name = podName, Uid = podUid },
            warning ? EventType.Warning : EventType.Normal, reason, $"{message} (podmigration {migration.Name})", cancellationToken);

    private static V1ObjectReference Reference(PodMigration migration) => new()
    {
        ApiVersion = $"{PodMigration.Group}/{PodMigration.Version}",
        Kind = PodMigration.KindName,
        NamespaceProperty = migration.Namespace,
        Name = migration.Name,
        Uid = migration.Metadata.Uid,
        ResourceVersion = migration.Metadata.ResourceVersion,
    };
}
