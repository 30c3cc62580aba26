using System.Text.Json.Serialization;

namespace PodMigrate.Runtime.Contract;

/// <summary>
/// The seal of a prepared checkpoint: what was verified, and which container may consume it. The runtime restores
/// only into the pod and container named here, so whoever can set a pod annotation cannot choose what is restored.
/// Nothing in here is applied to the new container's spec: the clone pod's own spec wins.
/// </summary>
public sealed record PreparedCheckpoint
{
    public const int CurrentFormatVersion = 2;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public required string CheckpointId { get; init; }

    public required string PodNamespace { get; init; }

    public required string PodName { get; init; }

    /// <summary>When set, the consuming sandbox's uid must match too.</summary>
    public string? PodUid { get; init; }

    public required string ContainerName { get; init; }

    /// <summary>Mount destinations the checkpointed process had; each must exist in the new spec.</summary>
    public IReadOnlyList<string> MountDestinations { get; init; } = [];

    /// <summary>
    /// The credentials CRIU will give back to every thread of the checkpointed process tree, read from its images on
    /// this node. The runtime refuses a restore in which any thread would get more than the new spec grants; an empty
    /// list is refused (nothing known is nothing allowed).
    /// </summary>
    public IReadOnlyList<CheckpointedThread> Threads { get; init; } = [];

    /// <summary>The manifest's sha256 of the archive this was extracted from (for logs and audits).</summary>
    public string? ArchiveSha256 { get; init; }

    public DateTimeOffset PreparedAt { get; init; }
}

/// <summary>One thread's credentials as its CRIU core image records them (ids in the container's own id space).</summary>
public sealed record CheckpointedThread
{
    public int Pid { get; init; }

    public int Tid { get; init; }

    public string Command { get; init; } = "";

    public uint Uid { get; init; }

    public uint EffectiveUid { get; init; }

    public uint SavedUid { get; init; }

    public uint FsUid { get; init; }

    public uint Gid { get; init; }

    public uint EffectiveGid { get; init; }

    public uint SavedGid { get; init; }

    public uint FsGid { get; init; }

    public IReadOnlyList<uint> Groups { get; init; } = [];

    /// <summary>Capability sets as bit masks (bit n: capability n, as in /proc/&lt;pid&gt;/status).</summary>
    public ulong CapInheritable { get; init; }

    public ulong CapPermitted { get; init; }

    public ulong CapEffective { get; init; }

    public ulong CapBounding { get; init; }

    public ulong CapAmbient { get; init; }

    /// <summary>null: the image does not record it (CRIU before 4.0).</summary>
    public bool? NoNewPrivileges { get; init; }

    /// <summary>disabled, strict or filter (SECCOMP_MODE_*).</summary>
    public string SeccompMode { get; init; } = "disabled";

    public override string ToString() => Tid == Pid ? $"pid {Pid} ({Command})" : $"thread {Tid} of pid {Pid} ({Command})";
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

    /// <summary>
    /// Restored with lazy pages: the process ran again before its memory was back; CRIU's lazy-pages daemon fills it from
    /// the staging, which stays until the daemon is done. <see cref="LazyPagesRecord"/> says when it is done.
    /// </summary>
    public bool LazyPages { get; init; }
}

/// <summary>
/// What the runtime's lazy-pages supervisor records once CRIU's lazy-pages daemon is done with a checkpoint restored with
/// lazy pages (<c>&lt;id&gt;.pages.json</c> next to the staging): every page served, or why not.
/// </summary>
public sealed record LazyPagesRecord
{
    public required string CheckpointId { get; init; }

    public required string ContainerId { get; init; }

    /// <summary>CLOCK_REALTIME when the daemon had served every page and exited cleanly (null: it failed).</summary>
    public long? FilledAtUnixNanos { get; init; }

    /// <summary>From the daemon's start to its end.</summary>
    public double Seconds { get; init; }

    /// <summary>
    /// Why the daemon did not serve every page. The restored container was killed: pages it never got would have read as
    /// zeros. The checkpoint on the share still holds them, and the source is still held, so the migration rolls back.
    /// </summary>
    public string? Failure { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PreparedCheckpoint))]
[JsonSerializable(typeof(RestoredRecord))]
[JsonSerializable(typeof(LazyPagesRecord))]
[JsonSerializable(typeof(CheckpointedThread))]
public sealed partial class RuntimeContractJson : JsonSerializerContext;
