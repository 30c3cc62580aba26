namespace PodMigrate.Core.Store;

/// <summary>Where the shared checkpoint directory is and how much of it to leave free.</summary>
public sealed class FileSystemCheckpointStoreOptions
{
    /// <summary>The share's root; checkpoints go under &lt;root&gt;/checkpoints/.</summary>
    public string Root { get; set; } = "";

    /// <summary>Bytes to leave free beyond the checkpoint's own size when checking space before a publish.</summary>
    public long ReserveBytes { get; set; } = 16L << 20;
}
