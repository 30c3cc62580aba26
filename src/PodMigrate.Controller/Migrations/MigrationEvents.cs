using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Migrations;

/// <summary>Events about a migration, on the PodMigration (what `kubectl describe podmigration` shows).</summary>
internal sealed class MigrationEvents(IKubernetesApi api, TimeProvider time, ILogger<MigrationEvents> logger)
{
    public const string Component = "podmigrate-controller";

    public Task NormalAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => RecordAsync(migration, "Normal", reason, message, cancellationToken);

    public Task WarningAsync(PodMigration migration, string reason, string message, CancellationToken cancellationToken)
        => RecordAsync(migration, "Warning", reason, message, cancellationToken);

    private async Task RecordAsync(PodMigration migration, string type, string reason, string message, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var e = new KubeEvent
        {
            Metadata = new ObjectMeta { Name = $"{migration.Name}.{now.ToUnixTimeMilliseconds():x}", Namespace = migration.Namespace },
            InvolvedObject = new ObjectReference
            {
                ApiVersion = migration.ApiVersion,
                Kind = PodMigration.KindName,
                Name = migration.Name,
                Namespace = migration.Namespace,
                Uid = migration.Metadata.Uid,
                ResourceVersion = migration.Metadata.ResourceVersion,
            },
            Type = type,
            Reason = reason,
            Message = message,
            Count = 1,
            FirstTimestamp = now,
            LastTimestamp = now,
            Source = new EventSource { Component = Component },
            ReportingComponent = Component,
        };
        try
        {
            await api.CreateAsync(KubeResources.Events, migration.Namespace, e, cancellationToken);
        }
        catch (PodMigrateException ex)
        {
            // An event that cannot be written must not fail the migration it describes.
            ControllerLog.EventDropped(logger, reason, ex.Message);
        }
    }
}
