using System.Text.Json.Serialization;

namespace PodMigrate.Runtime.Contract;

/// <summary>
/// The seal of a prepared checkpoint: what was verified, and which container may consume it. The runtime restores
/// only into the pod and container named here, so whoever can set a pod annotation cannot choose what is restored.
/// Nothing in here is applied to the new container's spec: the clone pod's own spec wins.
/// </summary>
public sealed record PreparedCheckpoint
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public required string CheckpointId { get; init; }

    public required string PodNamespace { get; init; }

    public required string PodName { get; init; }

    /// <summary>When set, the consuming sandbox's uid must match too.</summary>
    public string? PodUid { get; init; }

    public required string ContainerName { get; init; }

    /// <summary>Mount destinations the checkpointed process had; each must exist in the new spec.</summary>
    public IReadOnlyList<string> MountDestinations { get; init; } = [];

    /// <summary>The manifest's sha256 of the archive this was extracted from (for logs and audits).</summary>
    public string? ArchiveSha256 { get; init; }

    public DateTimeOffset PreparedAt { get; init; }
}

/// <summary>What the runtime records once it restored a prepared checkpoint (the restored process runs again at <see cref="RestoredAtUnixNanos"/>).</summary>
public sealed record RestoredRecord
{
    public required string CheckpointId { get; init; }

    public required string ContainerId { get; init; }

    /// <summary>CLOCK_REALTIME when `runc restore` returned (the process executes again).</summary>
    public long RestoredAtUnixNanos { get; init; }

    /// <summary>How long the runtime's create took, rootfs diff and CRIU restore included.</summary>
    public double RestoreSeconds { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PreparedCheckpoint))]
[JsonSerializable(typeof(RestoredRecord))]
public sealed partial class RuntimeContractJson : JsonSerializerContext;
