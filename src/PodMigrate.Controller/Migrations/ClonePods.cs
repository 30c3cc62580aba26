using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using PodMigrate.Kube.Client;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// The clone pod: the source pod's spec bound to the target node, under the <c>podmigrate</c> RuntimeClass with the
/// restore annotation, so that the node's unmodified kubelet creates it and the handler's runtime restores the checkpoint
/// the target agent prepared (or, opt-in, with the checkpoint image as the moved container's image, for runtimes that
/// still restore through CRI CreateContainer). Naming and ownership, as documented in README.md:
/// the clone is named <c>&lt;source&gt;-&lt;5 chars of the migration's uid&gt;</c> (two pods cannot share a name
/// while both exist); it carries the source's labels and annotations plus podmigrate.io/clone-of,
/// podmigrate.io/migration and podmigrate.io/checkpoint-id; it gets no owner references while it is verified (a
/// ReplicaSet must not count it yet) and inherits the source's once the source is gone (Migrate).
/// </summary>
internal static class ClonePods
{
    private static readonly HashSet<string> DroppedAnnotations = new(StringComparer.Ordinal)
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        "kubernetes.io/config.seen",
        "kubernetes.io/config.source",
        "kubernetes.io/config.hash",
    };

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>
    /// The source container's image pinned to the digest its node reported in the container's status
    /// (<c>imageID</c>: <c>repo@sha256:…</c>, with or without the <c>docker-pullable://</c> scheme), or its spec's image
    /// when the status names no pullable digest (an image id alone, <c>sha256:…</c>, names no repository to pull from).
    /// </summary>
    public static string? PinnedImage(V1Pod source, string container)
    {
        var spec = ImageOf(source, container);
        var reported = source.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == container)?.ImageID;
        if (string.IsNullOrEmpty(reported))
        {
            return spec;
        }
        const string DockerPullable = "docker-pullable://";
        var reference = reported.StartsWith(DockerPullable, StringComparison.Ordinal) ? reported[DockerPullable.Length..] : reported;
        return IsPinnedReference(reference) ? reference : spec;
    }

    /// <summary>Whether the reference names a repository and a sha256 digest: <c>host/repo@sha256:&lt;64 hex&gt;</c>.</summary>
    public static bool IsPinnedReference(string? reference)
    {
        var at = reference?.IndexOf("@sha256:", StringComparison.Ordinal) ?? -1;
        if (at <= 0)
        {
            return false;
        }
        var digest = reference.AsSpan(at + "@sha256:".Length);
        return digest.Length == 64 && !digest.ContainsAnyExcept(LowerHex);
    }

    public static string NameFor(PodMigration migration, string sourcePod)
    {
        var uid = (migration.Metadata.Uid ?? migration.Name).Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        var suffix = uid.Length >= 5 ? uid[..5] : uid;
        var prefix = sourcePod.Length > 253 - 6 ? sourcePod[..(253 - 6)] : sourcePod;
        return $"{prefix}-{suffix}";
    }

    /// <summary>
    /// The clone from the source pod as the API server returned it (its JSON, not the package's model: a field newer than
    /// the model, in the spec or a container, is copied as it is), with a new metadata and the fields the migration sets.
    /// </summary>
    public static JsonObject Build(JsonObject source, PodMigration migration, string name, string targetNode, string container, CloneRestore restore)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(restore);
        var clone = source.DeepClone().AsObject();
        clone.Remove("status");
        var metadata = source["metadata"] as JsonObject;
        var cloneMetadata = new JsonObject { ["name"] = name };
        if (metadata?["namespace"] is { } ns)
        {
            cloneMetadata["namespace"] = ns.DeepClone();
        }
        if (metadata?["labels"] is JsonObject labels)
        {
            cloneMetadata["labels"] = labels.DeepClone();
        }
        cloneMetadata["annotations"] = CloneAnnotations(metadata, migration, restore.CheckpointId);
        clone["metadata"] = cloneMetadata;
        Fill(clone, targetNode, container, restore);
        return clone;
    }

    /// <summary>
    /// Binds the pod (its JSON) to the target and makes its container restore (new clones and clone-of pods): under the
    /// <c>podmigrate</c> RuntimeClass with the restore annotations (the container keeps the source's image; the runtime
    /// restores the prepared checkpoint at create), or with the checkpoint image as its image.
    /// </summary>
    public static void Fill(JsonObject pod, string targetNode, string container, CloneRestore restore)
    {
        ArgumentNullException.ThrowIfNull(pod);
        ArgumentNullException.ThrowIfNull(restore);
        var metadata = pod["metadata"] as JsonObject ?? [];
        pod["metadata"] = metadata;
        var spec = pod["spec"] as JsonObject
            ?? throw new MigrationRefusedException("Unsupported", $"pod {KeyOf(metadata)} has no spec");
        spec["nodeName"] = targetNode;
        spec.Remove("schedulingGates");
        var target = (spec["containers"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(c => StringAt(c, "name") == container)
            ?? throw new MigrationRefusedException("Unsupported", $"pod {KeyOf(metadata)} has no container {container} to fill");
        if (restore.CheckpointImage is { } checkpointImage)
        {
            target["image"] = checkpointImage;
            // The image exists only on the target node: a pull could not find it anywhere else.
            target["imagePullPolicy"] = "IfNotPresent";
            return;
        }
        if (restore.BaseImage is { Length: > 0 } baseImage)
        {
            target["image"] = baseImage;
        }
        spec["runtimeClassName"] = CloneRestore.RuntimeClassName;
        var annotations = metadata["annotations"] as JsonObject ?? [];
        metadata["annotations"] = annotations;
        annotations[RestoreAnnotations.Checkpoint] = restore.CheckpointId;
        annotations[RestoreAnnotations.Container] = container;
        // Always said, never left to the runtime's default (eager when absent, for controllers that do not wait for the pages).
        annotations[RestoreAnnotations.Pages] = restore.LazyPages ? RestoreAnnotations.PagesLazy : RestoreAnnotations.PagesEager;
    }

    /// <summary>The image of a container of the pod, or null.</summary>
    public static string? ImageOf(V1Pod? pod, string? container)
        => pod?.Spec?.Containers?.FirstOrDefault(c => c.Name == container)?.Image;

    private static JsonObject CloneAnnotations(JsonObject? sourceMetadata, PodMigration migration, string checkpointId)
    {
        var annotations = new JsonObject();
        if (sourceMetadata?["annotations"] is JsonObject source)
        {
            foreach (var (key, value) in source)
            {
                if (!DroppedAnnotations.Contains(key) && !key.StartsWith("podmigrate.io/", StringComparison.Ordinal))
                {
                    annotations[key] = value?.DeepClone();
                }
            }
        }
        annotations[MigrationAnnotations.CloneOf] = StringAt(sourceMetadata, "name");
        annotations[MigrationAnnotations.Migration] = migration.Name;
        annotations[MigrationAnnotations.CheckpointId] = checkpointId;
        return annotations;
    }

    private static string? StringAt(JsonObject? obj, string name)
        => obj?[name] is JsonValue value && value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : null;

    private static string KeyOf(JsonObject metadata) => $"{StringAt(metadata, "namespace") ?? "default"}/{StringAt(metadata, "name")}";

    /// <summary>The merge patch that hands the source's owner references to the clone once the source is gone.</summary>
    public static string AdoptionPatch(V1Pod source)
    {
        var owners = new JsonArray();
        foreach (var owner in source.Metadata.OwnerReferences ?? [])
        {
            var reference = new JsonObject { ["apiVersion"] = owner.ApiVersion, ["kind"] = owner.Kind, ["name"] = owner.Name, ["uid"] = owner.Uid };
            if (owner.Controller is { } controller)
            {
                reference["controller"] = controller;
            }
            if (owner.BlockOwnerDeletion is { } block)
            {
                reference["blockOwnerDeletion"] = block;
            }
            owners.Add(reference);
        }
        return new JsonObject { ["metadata"] = new JsonObject { ["ownerReferences"] = owners } }.ToJsonString();
    }
}

/// <summary>
/// How the clone's container is restored: <see cref="CheckpointImage"/> set = run that checkpoint image (CRI restores
/// it); else through the <see cref="RuntimeClassName"/> RuntimeClass from the checkpoint the target agent prepared,
/// with <see cref="BaseImage"/> (the source container's image) as the container's image, its pages lazily
/// (<see cref="LazyPages"/>) or before it runs.
/// </summary>
internal sealed record CloneRestore(string CheckpointId, string? CheckpointImage = null, string? BaseImage = null, bool LazyPages = false)
{
    /// <summary>The RuntimeClass (deploy/) whose handler restores prepared checkpoints at create.</summary>
    public const string RuntimeClassName = "podmigrate";
}

/// <summary>How a clone pod is doing, as far as the verification is concerned.</summary>
internal enum CloneHealthState
{
    Starting,
    Ready,
    NotReady,
    Failed,
}

internal readonly record struct CloneHealth(CloneHealthState State, string Message, DateTimeOffset? ReadySince)
{
    /// <summary>
    /// Failed is final (the restore did not take, the process died or was restarted: its memory is no longer the
    /// checkpointed one); NotReady means it was ready once and is not now; Starting is not ready yet.
    /// </summary>
    public static CloneHealth Of(V1Pod pod, string container)
    {
        if (pod.Metadata.DeletionTimestamp is not null)
        {
            return new(CloneHealthState.Failed, $"clone pod {pod.Key()} is being deleted", null);
        }
        var status = pod.Status;
        if (status?.Phase is "Failed" or "Succeeded")
        {
            return new(CloneHealthState.Failed, $"clone pod {pod.Key()} is {status.Phase}{Explain(status.Reason, status.Message)}", null);
        }
        var containerStatus = status?.ContainerStatuses?.FirstOrDefault(c => c.Name == container);
        if (containerStatus is not null)
        {
            if (containerStatus.RestartCount > 0)
            {
                return new(CloneHealthState.Failed, $"container {container} of clone pod {pod.Key()} restarted ({containerStatus.RestartCount}): the restored process died", null);
            }
            if (containerStatus.State?.Terminated is { } terminated)
            {
                return new(CloneHealthState.Failed, $"container {container} of clone pod {pod.Key()} terminated with exit code {terminated.ExitCode}{Explain(terminated.Reason, terminated.Message)}", null);
            }
            if (containerStatus.State?.Waiting is { Reason: { } reason } waiting && reason is not ("ContainerCreating" or "PodInitializing"))
            {
                return new(CloneHealthState.Failed, $"container {container} of clone pod {pod.Key()} is waiting: {reason}{Explain(null, waiting.Message)}", null);
            }
        }
        var ready = status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        if (ready?.Status == "True" && containerStatus?.State?.Running is not null)
        {
            return new(CloneHealthState.Ready, $"clone pod {pod.Key()} is Running and Ready", ready.LastTransitionTime);
        }
        return new(status?.Phase == "Running" && ready is not null ? CloneHealthState.NotReady : CloneHealthState.Starting,
            $"clone pod {pod.Key()} is {status?.Phase ?? "Pending"}, not Ready{Explain(ready?.Reason, ready?.Message)}", null);
    }

    private static string Explain(string? reason, string? message)
        => (reason, message) switch
        {
            ({ Length: > 0 }, { Length: > 0 }) => $" ({reason}: {message})",
            ({ Length: > 0 }, _) => $" ({reason})",
            (_, { Length: > 0 }) => $" ({message})",
            _ => "",
        };
}
