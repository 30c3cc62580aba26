using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// podmigrate.io/v1alpha1 PodMigration (deploy/10-podmigration-crd.yaml): a request to move (Migrate) or copy (Clone) a
/// running pod to another node with its memory. The status is the migration's journal: every step is recorded
/// before it is taken, so a restarted controller resumes where the last one stopped and never repeats a checkpoint.
/// </summary>
public sealed class PodMigration : IKubernetesObject<V1ObjectMeta>
{
    public const string Group = "podmigrate.io";
    public const string Version = "v1alpha1";
    public const string KindName = "PodMigration";
    public const string Finalizer = "podmigrate.io/migration";

    /// <summary>Read and written through the package's JSON contract, as its own kinds are (the metadata is its V1ObjectMeta).</summary>
    public static ResourceKind<PodMigration> Resource { get; } = KubeResources.Package<PodMigration>(Group, Version, "podmigrations", KindName, namespaced: true);

    public string? ApiVersion { get; set; } = $"{Group}/{Version}";

    public string? Kind { get; set; } = KindName;

    public V1ObjectMeta Metadata { get; set; } = new();

    public PodMigrationSpec Spec { get; set; } = new();

    public PodMigrationStatus? Status { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }

    [JsonIgnore]
    public string Namespace => Metadata?.NamespaceProperty ?? "default";

    [JsonIgnore]
    public string Name => Metadata?.Name ?? "";

    public override string ToString() => $"podmigration {Namespace}/{Name}";
}

public sealed class PodMigrationSpec
{
    /// <summary>The source pod, in the PodMigration's namespace.</summary>
    public string PodName { get; set; } = "";

    /// <summary>The container to move; default: the pod's only container.</summary>
    public string? ContainerName { get; set; }

    /// <summary>Where the clone runs; default: chosen among Ready nodes with a healthy agent and room.</summary>
    public string? TargetNode { get; set; }

    /// <summary><see cref="MigrationMode.Migrate"/> (default) or <see cref="MigrationMode.Clone"/>.</summary>
    public string? Mode { get; set; }

    /// <summary>zstd (default), gzip or none.</summary>
    public string? Codec { get; set; }

    /// <summary>How long the clone must stay Running and Ready before the source is released (Go duration; default 10s).</summary>
    public string? VerifyWindow { get; set; }

    /// <summary>Bound for the whole migration (Go duration; default 10m); passing it before the source is released rolls back.</summary>
    public string? Deadline { get; set; }

    /// <summary>Keep the checkpoint on the share after success (pinned); default: deleted once the migration is over.</summary>
    public bool? RetainCheckpoint { get; set; }

    /// <summary>
    /// Fill this existing pod (created with annotation podmigrate.io/clone-of and the scheduling gate) instead of
    /// creating a new one: set by the controller for clone-of pods.
    /// </summary>
    public string? ClonePodName { get; set; }

    /// <summary>RuntimeClass (default): prepared on the target, restored by the podmigrate runtime; or CheckpointImage.</summary>
    public string? RestoreMethod { get; set; }

    /// <summary>
    /// RuntimeClass restores: <see cref="MigrationRestorePages.Lazy"/> (default: the clone runs as soon as everything but
    /// its memory is restored, and its pages are filled from the target's prepared staging while it runs; the migration
    /// commits only once every page is in) or <see cref="MigrationRestorePages.Eager"/> (every page before it runs).
    /// </summary>
    public string? RestorePages { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>The migration's journal; its bookkeeping (phase transitions, conditions, timings, downtime) is in PodMigrationStatus.Bookkeeping.cs.</summary>
public sealed partial class PodMigrationStatus
{
    public string? Phase { get; set; }

    /// <summary>What is happening or what went wrong, for people.</summary>
    public string? Message { get; set; }

    public string? SourceNode { get; set; }

    public string? TargetNode { get; set; }

    public string? SourcePodUid { get; set; }

    public string? ContainerName { get; set; }

    /// <summary>Chosen before the checkpoint is asked for, so a restarted controller asks for the same one.</summary>
    public string? CheckpointId { get; set; }

    /// <summary>
    /// The image the clone's container runs: the source container's image by the digest its node reported
    /// (<c>repo@sha256:…</c>), so a tag moved since the source pulled it cannot give the clone another root file system
    /// than the one CRIU restores into; the tag when the node reported no digest.
    /// </summary>
    public string? SourceImage { get; set; }

    /// <summary>The checkpoint image on the target node that the clone pod's container runs.</summary>
    public string? CheckpointImage { get; set; }

    public string? ClonePod { get; set; }

    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>When the source was frozen (just before the checkpoint was asked for).</summary>
    public DateTimeOffset? FrozenAt { get; set; }

    /// <summary>When the source stopped executing (its freeze began), as its agent reported it with the checkpoint.</summary>
    public DateTimeOffset? SourceStoppedAt { get; set; }

    /// <summary>
    /// RuntimeClass restores: when the migration went on with the checkpoint sealed on the share and prepared on the
    /// target, before the archive was durable (the source agent makes it durable meanwhile; the commit waits for
    /// <see cref="PublishedAt"/>).
    /// </summary>
    public DateTimeOffset? SealedAt { get; set; }

    /// <summary>When the controller saw the checkpoint published, durable on the share.</summary>
    public DateTimeOffset? PublishedAt { get; set; }

    /// <summary>RuntimeClass restores: the node asked to prepare the checkpoint (written before asking: released on rollback).</summary>
    public string? PreparedOn { get; set; }

    /// <summary>RuntimeClass restores: when the target agent had the checkpoint prepared.</summary>
    public DateTimeOffset? PreparedAt { get; set; }

    /// <summary>RuntimeClass restores: when the restored process executed again, as the target's runtime recorded it.</summary>
    public DateTimeOffset? RestoredAt { get; set; }

    /// <summary>RuntimeClass restores: restored with lazy pages, as the target's runtime recorded it.</summary>
    public bool? LazyPages { get; set; }

    /// <summary>Lazy pages: when the target's lazy-pages daemon had served every page (the commit waits for it).</summary>
    public DateTimeOffset? PagesFilledAt { get; set; }

    /// <summary>When the clone pod was created (or a clone-of pod filled): the restore timeout counts from here.</summary>
    public DateTimeOffset? CloneCreatedAt { get; set; }

    /// <summary>When the clone was first seen Running and Ready: the verification window starts here.</summary>
    public DateTimeOffset? CloneReadyAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>
    /// Set (and written) before the source is discarded (Migrate) or resumed (Clone): from here on the migration only
    /// goes forward; before it, any failure rolls back.
    /// </summary>
    public bool? Committed { get; set; }

    /// <summary>Set when a rollback starts; a restarted controller finishes it.</summary>
    public string? RollbackReason { get; set; }

    /// <summary>
    /// How long the workload did not run (Migrate): from the instant the source stopped executing to the instant the
    /// restored process executed again (RuntimeClass restores; else to the clone Running and Ready).
    /// </summary>
    public string? Downtime { get; set; }

    /// <summary>Per-phase durations (Go durations): precheck, checkpoint, restore, verify, total, and the agent's phases.</summary>
    public Dictionary<string, string>? Timings { get; set; }

    /// <summary>
    /// The source agent's checkpoint operation, written before it is started: a requeued or restarted controller attaches
    /// to it by this id (the agent's idempotency key) instead of checkpointing again.
    /// </summary>
    public string? CheckpointOperation { get; set; }

    /// <summary>The target agent's prepare (RuntimeClass) or checkpoint-image import operation, written before it is started.</summary>
    public string? RestoreOperation { get; set; }

    public List<MigrationCondition>? Conditions { get; set; }

    public long? ObservedGeneration { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>metav1.Condition.</summary>
public sealed class MigrationCondition
{
    public string Type { get; set; } = "";

    public string Status { get; set; } = "";

    public string? Reason { get; set; }

    public string? Message { get; set; }

    public DateTimeOffset? LastTransitionTime { get; set; }

    public long? ObservedGeneration { get; set; }
}

public static class MigrationPhase
{
    public const string Pending = "Pending";
    public const string Prechecking = "Prechecking";
    public const string Checkpointing = "Checkpointing";
    public const string Restoring = "Restoring";
    public const string Verifying = "Verifying";
    public const string Succeeded = "Succeeded";
    public const string Failed = "Failed";
    public const string RolledBack = "RolledBack";

    public static bool IsTerminal(string? phase) => phase is Succeeded or Failed or RolledBack;
}

public static class MigrationRestoreMethod
{
    public const string RuntimeClass = "RuntimeClass";
    public const string CheckpointImage = "CheckpointImage";
}

public static class MigrationRestorePages
{
    public const string Lazy = "Lazy";
    public const string Eager = "Eager";
}

public static class MigrationMode
{
    public const string Migrate = "Migrate";
    public const string Clone = "Clone";
}

/// <summary>Annotations and labels PodMigrate puts on pods.</summary>
public static class MigrationAnnotations
{
    /// <summary>On a clone: the source pod's name. On a pod created by a user: "fill me from a checkpoint of that pod".</summary>
    public const string CloneOf = "podmigrate.io/clone-of";

    /// <summary>On a clone-of pod: the node to run on (alternatively spec.nodeSelector kubernetes.io/hostname).</summary>
    public const string TargetNode = "podmigrate.io/target-node";

    /// <summary>On a clone: the PodMigration that made it.</summary>
    public const string Migration = "podmigrate.io/migration";

    public const string CheckpointId = "podmigrate.io/checkpoint-id";

    /// <summary>The scheduling gate a clone-of pod is created with, so that no kubelet runs it before it is filled.</summary>
    public const string CloneGate = "podmigrate.io/clone-of";
}
