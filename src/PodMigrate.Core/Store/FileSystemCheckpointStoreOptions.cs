namespace PodMigrate.Core.Store;

/// <summary>Where the shared checkpoint directory is, how much of it to leave free, and how checkpoints are signed and trusted.</summary>
public sealed class FileSystemCheckpointStoreOptions
{
    /// <summary>The share's root; checkpoints go under &lt;root&gt;/checkpoints/.</summary>
    public string Root { get; set; } = "";

    /// <summary>Bytes to leave free beyond the checkpoint's own size when checking space before a publish.</summary>
    public long ReserveBytes { get; set; } = 16L << 20;

    /// <summary>
    /// Signs every published manifest and decides which checkpoints are handed out (see
    /// <see cref="Tls.CheckpointSignatures"/>). Null is the safe default: nothing can be published (no key to sign
    /// with) and every checkpoint is refused (no CA to trust).
    /// </summary>
    public Tls.CheckpointSignatures? Signatures { get; set; }

    /// <summary>
    /// This writer's name (the node's), part of every staging directory's name together with a random part, so that two
    /// writers on different nodes never stage into the same directory (exclusive creation is not exclusive across the
    /// clients of some shares). Null: the host name.
    /// </summary>
    public string? WriterName { get; set; }

    /// <summary>Whether a publish reads back what it wrote and checks its digests before the checkpoint is renamed into place.</summary>
    public ShareReadBack ReadBack { get; set; } = ShareReadBack.Auto;
}

/// <summary>When the store reads its writes back before publishing (see <see cref="FileSystemCheckpointStoreOptions.ReadBack"/>).</summary>
public enum ShareReadBack
{
    /// <summary>On network and FUSE file systems (NFS, SMB, smbnetfs), where fsync may send nothing; not on local disks.</summary>
    Auto,

    /// <summary>Always (tests; a share whose client the operator does not trust).</summary>
    Always,

    /// <summary>Never: fsync is trusted.</summary>
    Never,
}
