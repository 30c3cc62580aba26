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
}
