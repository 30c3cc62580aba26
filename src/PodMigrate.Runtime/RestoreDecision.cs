using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime;

/// <summary>What to do with a `create`, decided from the new container's spec alone (pure, so it is tested without runc).</summary>
internal abstract record CreateAction
{
    private CreateAction() { }

    /// <summary>Hand the call to runc unchanged.</summary>
    public sealed record PassThrough(string Reason) : CreateAction;

    /// <summary>
    /// Restore the prepared checkpoint <paramref name="CheckpointId"/> into this container; <paramref name="LazyPages"/>:
    /// post-copy (the pod annotation podmigrate.io/restore-pages: lazy), else every page before the process runs.
    /// </summary>
    public sealed record Restore(string CheckpointId, ContainerIdentity Container, bool LazyPages = false) : CreateAction;

    public static CreateAction Decide(OciSpec spec)
    {
        var checkpointId = spec.Annotation(RestoreAnnotations.Checkpoint);
        if (checkpointId is null)
        {
            return new PassThrough("no restore annotation");
        }
        if (spec.Annotation(RestoreAnnotations.CriContainerType) == "sandbox")
        {
            return new PassThrough("the pod's sandbox container");
        }
        var identity = ContainerIdentity.From(spec);
        var target = spec.Annotation(RestoreAnnotations.Container);
        if (target is { Length: > 0 } && target != identity.ContainerName)
        {
            return new PassThrough($"container {identity.ContainerName} is not the restore target {target}");
        }
        var restartCount = spec.Annotation(RestoreAnnotations.RestartCount);
        if (restartCount is { Length: > 0 } && restartCount != "0")
        {
            return new PassThrough($"restart {restartCount} of container {identity.ContainerName}: created from its image");
        }
        if (!IsValidCheckpointId(checkpointId))
        {
            throw new RuntimeException($"podmigrate: annotation {RestoreAnnotations.Checkpoint}='{checkpointId}' is not a checkpoint id");
        }
        var lazy = spec.Annotation(RestoreAnnotations.Pages) switch
        {
            null or "" or RestoreAnnotations.PagesEager => false,
            RestoreAnnotations.PagesLazy => true,
            var other => throw new RuntimeException($"podmigrate: annotation {RestoreAnnotations.Pages}='{other}' is not {RestoreAnnotations.PagesLazy} or {RestoreAnnotations.PagesEager}"),
        };
        return new Restore(checkpointId, identity, lazy);
    }

    /// <summary>A single path component of letters, digits, '.', '_', '-' (not "." or ".."), at most 253 characters.</summary>
    public static bool IsValidCheckpointId(string id)
        => id.Length is > 0 and <= 253 && id is not ("." or "..")
           && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-');
}

/// <summary>The pod and container a spec belongs to, from the CRI annotations containerd / CRI-O set.</summary>
internal sealed record ContainerIdentity(string? PodNamespace, string? PodName, string? PodUid, string? ContainerName)
{
    public static ContainerIdentity From(OciSpec spec) => new(
        spec.Annotation(RestoreAnnotations.CriSandboxNamespace),
        spec.Annotation(RestoreAnnotations.CriSandboxName),
        spec.Annotation(RestoreAnnotations.CriSandboxUid),
        spec.Annotation(RestoreAnnotations.CriContainerName));

    public override string ToString() => $"{PodNamespace}/{PodName}{(PodUid is null ? "" : "[" + PodUid + "]")}/{ContainerName}";

    /// <summary>Why <paramref name="seal"/> may not be restored into this container, or null when it may.</summary>
    public string? Mismatch(PreparedCheckpoint seal)
    {
        if (PodNamespace is null || PodName is null || ContainerName is null)
        {
            return $"the container's spec lacks the CRI annotations naming its pod and container ({this})";
        }
        var sealed_ = $"{seal.PodNamespace}/{seal.PodName}{(seal.PodUid is null ? "" : "[" + seal.PodUid + "]")}/{seal.ContainerName}";
        return seal.PodNamespace != PodNamespace || seal.PodName != PodName || seal.ContainerName != ContainerName
               || (seal.PodUid is { Length: > 0 } && seal.PodUid != PodUid)
            ? $"checkpoint {seal.CheckpointId} was prepared for {sealed_}, not for {this}"
            : null;
    }

    /// <summary>Mount destinations the checkpointed process had that the new spec lacks.</summary>
    public static IReadOnlyList<string> MissingMounts(PreparedCheckpoint seal, OciSpec spec)
    {
        var have = spec.MountDestinations.Select(Normalize).ToHashSet(StringComparer.Ordinal);
        return seal.MountDestinations.Where(d => !have.Contains(Normalize(d))).ToArray();
    }

    private static string Normalize(string destination)
    {
        var d = "/" + destination.Trim('/');
        return d.Replace("//", "/", StringComparison.Ordinal);
    }
}
