namespace PodMigrate.Core.Archive;

/// <summary>
/// The one owner of the checkpoint archive's file names: the Kubernetes layout that containerd 2.x and CRI-O
/// write (checkpointctl's lib/metadata.go), plus PodMigrate's own manifest beside the archive.
/// </summary>
public static class CheckpointLayout
{
    /// <summary>The CRIU image directory (inventory.img, pstree.img, pages-*.img, ...).</summary>
    public const string CheckpointDirectory = "checkpoint";

    /// <summary>ContainerConfig JSON (<see cref="ContainerConfigDump"/>).</summary>
    public const string ConfigDumpFile = "config.dump";

    /// <summary>The OCI runtime spec (config.json) as JSON.</summary>
    public const string SpecDumpFile = "spec.dump";

    /// <summary>CRI ContainerStatus as JSON, snake_case (<see cref="ContainerStatusDump"/>); containerd 2.x needs it to restore.</summary>
    public const string StatusDumpFile = "status.dump";

    /// <summary>containerd's CRI plugin status file (Go field names).</summary>
    public const string StatusFile = "status";

    /// <summary>CRIU's dump statistics image; checkpointctl --stats reads it.</summary>
    public const string StatsDumpFile = "stats-dump";

    /// <summary>CRIU's dump log.</summary>
    public const string DumpLogFile = "dump.log";

    /// <summary>CRIU's restore log, written at restore time.</summary>
    public const string RestoreLogFile = "restore.log";

    /// <summary>Changes to the container's root file system (gzip from containerd, a plain tar from CRI-O).</summary>
    public const string RootFsDiffTar = "rootfs-diff.tar";

    /// <summary>Paths deleted from the root file system (CRI-O: a JSON array of strings).</summary>
    public const string DeletedFilesFile = "deleted.files";

    /// <summary>A copy of the CRI container log (containerd 2.x).</summary>
    public const string ContainerLogFile = "container.log";

    /// <summary>PodMigrate's manifest: stored beside the archive blob, never inside it (it holds the blob's digest).</summary>
    public const string ManifestFile = "podmigrate.manifest.json";

    /// <summary>
    /// The agent's signature over the exact bytes of <see cref="ManifestFile"/>, with the signer's certificate chain
    /// (<see cref="Tls.CheckpointSignatures"/>); beside the manifest, written before the checkpoint is published.
    /// </summary>
    public const string SignatureFile = "podmigrate.manifest.sig";

    /// <summary>
    /// Present (empty) while a checkpoint is pinned: kept apart from the manifest so that pinning and unpinning never
    /// rewrite a signed file.
    /// </summary>
    public const string PinnedMarkerFile = "podmigrate.pinned";

    /// <summary>The files CRI runtimes and checkpointctl require at the top of an archive.</summary>
    public static IReadOnlyList<string> RequiredEntries { get; } = [CheckpointDirectory, ConfigDumpFile, SpecDumpFile];
}
