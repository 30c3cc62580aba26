using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Migrations;

/// <summary>A PodMigration's spec with defaults applied and every value validated: bad input fails the migration at once.</summary>
internal sealed record MigrationSettings(
    string PodName,
    string? ContainerName,
    string? TargetNode,
    bool IsClone,
    Codec Codec,
    TimeSpan VerifyWindow,
    TimeSpan Deadline,
    bool RetainCheckpoint,
    string? ClonePodName,
    bool ThroughCheckpointImage = false,
    bool LazyPages = true)
{
    public static readonly TimeSpan DefaultVerifyWindow = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromMinutes(10);

    public static MigrationSettings From(PodMigrationSpec spec)
    {
        if (string.IsNullOrEmpty(spec.PodName))
        {
            throw PodMigrateException.InvalidArgument("spec.podName is required");
        }
        var isClone = spec.Mode switch
        {
            null or "" or MigrationMode.Migrate => false,
            MigrationMode.Clone => true,
            _ => throw PodMigrateException.InvalidArgument($"spec.mode '{spec.Mode}' is not Migrate or Clone"),
        };
        var codec = spec.Codec switch
        {
            null or "" or "zstd" => Codec.Zstd,
            "gzip" => Codec.Gzip,
            "none" => Codec.None,
            _ => throw PodMigrateException.InvalidArgument($"spec.codec '{spec.Codec}' is not zstd, gzip or none"),
        };
        var window = string.IsNullOrEmpty(spec.VerifyWindow) ? DefaultVerifyWindow : KubeDuration.Parse(spec.VerifyWindow, "spec.verifyWindow");
        var deadline = string.IsNullOrEmpty(spec.Deadline) ? DefaultDeadline : KubeDuration.Parse(spec.Deadline, "spec.deadline");
        if (deadline <= window)
        {
            throw PodMigrateException.InvalidArgument($"spec.deadline ({KubeDuration.Format(deadline)}) must be longer than spec.verifyWindow ({KubeDuration.Format(window)})");
        }
        var throughImage = spec.RestoreMethod switch
        {
            null or "" or MigrationRestoreMethod.RuntimeClass => false,
            MigrationRestoreMethod.CheckpointImage => true,
            _ => throw PodMigrateException.InvalidArgument($"spec.restoreMethod '{spec.RestoreMethod}' is not RuntimeClass or CheckpointImage"),
        };
        var lazy = spec.RestorePages switch
        {
            null or "" or MigrationRestorePages.Lazy => true,
            MigrationRestorePages.Eager => false,
            _ => throw PodMigrateException.InvalidArgument($"spec.restorePages '{spec.RestorePages}' is not Lazy or Eager"),
        };
        return new MigrationSettings(spec.PodName, NullIfEmpty(spec.ContainerName), NullIfEmpty(spec.TargetNode), isClone, codec, window, deadline,
            spec.RetainCheckpoint ?? false, NullIfEmpty(spec.ClonePodName), throughImage, lazy);
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
