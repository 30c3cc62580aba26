namespace PodMigrate.Runtime.Contract;

/// <summary>
/// Where a prepared checkpoint lives on the target node, and what is in it. The agent writes
/// <c>&lt;root&gt;/&lt;checkpoint-id&gt;/</c> (root-only, 0700), fills it from the verified archive, and writes
/// <see cref="SealFile"/> last and atomically: a directory without the seal is not prepared and is never consumed.
/// </summary>
public static class PreparedLayout
{
    /// <summary>The node-local staging root (tmpfs, so the restore reads from memory).</summary>
    public const string DefaultRoot = "/run/podmigrate/prepared";

    /// <summary>Overrides <see cref="DefaultRoot"/> (one place: the agent's options and the runtime's environment).</summary>
    public const string RootEnvironmentVariable = "PODMIGRATE_PREPARED_DIR";

    /// <summary>CRIU's image directory, as in the archive.</summary>
    public const string ImagesDirectory = "checkpoint";

    /// <summary>The container's root file system changes (a tar), applied onto the new bundle's rootfs before the restore.</summary>
    public const string RootFsDiffTar = "rootfs-diff.tar";

    /// <summary>Paths deleted from the root file system (a JSON array of strings), removed from the new rootfs.</summary>
    public const string DeletedFilesFile = "deleted.files";

    /// <summary><see cref="PreparedCheckpoint"/> as JSON: written last; its presence means complete and verified.</summary>
    public const string SealFile = "prepared.json";

    /// <summary>Written by the runtime next to the prepared directories once a restore ran: <c>&lt;id&gt;.restored.json</c>.</summary>
    public const string RestoredSuffix = ".restored.json";

    /// <summary>In the prepared directory while the runtime consumes it: "pid container-id" of the restoring runtime, then of its lazy-pages supervisor.</summary>
    public const string ClaimFile = "consumed-by";

    /// <summary>Written by the runtime's lazy-pages supervisor once the daemon is done: <c>&lt;id&gt;.pages.json</c> (<see cref="LazyPagesRecord"/>).</summary>
    public const string PagesSuffix = ".pages.json";

    public static string ResolveRoot(string? configured = null)
        => !string.IsNullOrEmpty(configured) ? configured
         : Environment.GetEnvironmentVariable(RootEnvironmentVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
         : DefaultRoot;

    public static string DirectoryOf(string root, string checkpointId) => Path.Combine(root, checkpointId);

    public static string RestoredRecordOf(string root, string checkpointId) => Path.Combine(root, checkpointId + RestoredSuffix);

    public static string PagesRecordOf(string root, string checkpointId) => Path.Combine(root, checkpointId + PagesSuffix);
}
