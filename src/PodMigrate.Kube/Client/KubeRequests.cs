namespace PodMigrate.Kube.Client;

/// <summary>Query parameters of list and watch.</summary>
public sealed record ListOptions
{
    /// <summary>e.g. "app=counter,tier!=db", "env in (a,b)".</summary>
    public string? LabelSelector { get; init; }

    /// <summary>e.g. "spec.nodeName=node-a,status.phase=Running".</summary>
    public string? FieldSelector { get; init; }

    /// <summary>List: the version to serve at least; watch: the version to start after.</summary>
    public string? ResourceVersion { get; init; }

    /// <summary>Watch only: the server ends the stream after this long.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>Watch only: ask for BOOKMARK events.</summary>
    public bool AllowWatchBookmarks { get; init; }
}

/// <summary>The patch formats the client sends; each is its own Content-Type.</summary>
public enum PatchType
{
    /// <summary>RFC 7386 application/merge-patch+json: maps merge, lists replace, null deletes.</summary>
    MergePatch,

    /// <summary>application/strategic-merge-patch+json: lists with a merge key merge by it (built-in kinds only).</summary>
    StrategicMergePatch,

    /// <summary>RFC 6902 application/json-patch+json: a list of operations.</summary>
    JsonPatch,
}

public enum WatchEventType
{
    Added,
    Modified,
    Deleted,
    Bookmark,
}

/// <summary>One event of a watch stream; for a BOOKMARK only the object's resourceVersion is meaningful.</summary>
public sealed record WatchEvent<T>(WatchEventType Type, T Resource);
