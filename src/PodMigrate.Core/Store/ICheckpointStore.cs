using PodMigrate.Core.Archive;

namespace PodMigrate.Core.Store;

/// <summary>
/// Where checkpoints live between nodes (a shared NFS/SMB directory in production). Publishing is atomic and never
/// overwrites; nothing partial is ever listed; every read verifies what it hands out.
/// </summary>
public interface ICheckpointStore
{
    /// <summary>Archives a staged checkpoint directory and publishes it under <see cref="CheckpointPublishRequest.Id"/>.</summary>
    /// <exception cref="Errors.PodMigrateException">AlreadyExists, ResourceExhausted (share full), InvalidArgument.</exception>
    Task<StoredCheckpoint> PublishAsync(CheckpointPublishRequest request, IProgress<ArchiveProgress>? progress, CancellationToken cancellationToken);

    /// <summary>
    /// Published checkpoints, newest first, optionally only those of one pod. Signatures are not checked here (a listing
    /// shows what is on the share); every other read checks them.
    /// </summary>
    Task<IReadOnlyList<StoredCheckpoint>> ListAsync(PodReference? pod, CancellationToken cancellationToken);

    /// <summary>
    /// One checkpoint's manifest and location, its signature verified (NotFound; PermissionDenied when it is unsigned,
    /// altered or not signed by a trusted agent; DataLoss if the manifest is unreadable). Every read below checks the
    /// signature the same way, before it reads the archive or writes anything.
    /// </summary>
    Task<StoredCheckpoint> GetAsync(CheckpointId id, CancellationToken cancellationToken);

    /// <summary>
    /// The full check: the archive's size and sha256, and every entry (name, type, size, sha256) against the manifest,
    /// decompressing it without writing anything (DataLoss on any mismatch).
    /// </summary>
    Task<StoredCheckpoint> VerifyAsync(CheckpointId id, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a checkpoint for restore: verifies while streaming it into <paramref name="targetDirectory"/> (absent or
    /// empty), re-hashing as much as <paramref name="verification"/> says; nothing stays unless everything matched.
    /// </summary>
    Task<StoredCheckpoint> ExtractAsync(CheckpointId id, string targetDirectory, CancellationToken cancellationToken, Archive.ArchiveVerification verification = Archive.ArchiveVerification.EveryFile);

    /// <summary>
    /// <see cref="ExtractAsync"/> of a checkpoint that may still be being published: follows its archive as it is
    /// written (waiting for it to appear), extracting ahead, and verifies the whole against the manifest once that is
    /// sealed in the writer's staging (<see cref="CheckpointPublishRequest.BeforeSeal"/>) or published, its signature
    /// checked; nothing stays unless everything matched. A publication that fails or does not
    /// come within the caller's deadline fails this too.
    /// </summary>
    Task<StoredCheckpoint> ExtractFollowingAsync(CheckpointId id, string targetDirectory, CancellationToken cancellationToken);

    /// <summary>
    /// Opens a checkpoint as a checkpoint image: streams it, decompressed once and verified in the same pass, into
    /// <paramref name="destination"/> as the image's layer (see <see cref="Images.CheckpointImage.WriteLayerAsync"/>).
    /// When it throws (DataLoss for an archive that fails verification), what the destination received must be discarded.
    /// </summary>
    Task<(StoredCheckpoint Checkpoint, Images.CheckpointLayer Layer)> WriteImageLayerAsync(
        CheckpointId id, Stream destination, CheckpointTarCopyOptions options, CancellationToken cancellationToken);

    /// <summary>Deletes a checkpoint; a pinned one only with <paramref name="force"/> (else FailedPrecondition).</summary>
    Task DeleteAsync(CheckpointId id, bool force, CancellationToken cancellationToken);

    /// <summary>Pins or unpins a checkpoint (pinned: never removed by retention).</summary>
    Task<StoredCheckpoint> SetPinnedAsync(CheckpointId id, bool pinned, CancellationToken cancellationToken);

    /// <summary>Removes unpinned checkpoints beyond the policy's limits; returns the ids removed.</summary>
    Task<IReadOnlyList<CheckpointId>> ApplyRetentionAsync(RetentionPolicy policy, CancellationToken cancellationToken);

    /// <summary>Removes staging leftovers (crashed writers) older than <paramref name="olderThan"/>; returns how many.</summary>
    Task<int> CleanupStagingAsync(TimeSpan olderThan, CancellationToken cancellationToken);

    /// <summary>Bytes still available on the share; null when the share cannot tell (e.g. smbnetfs reports 0 blocks in all).</summary>
    long? GetAvailableBytes();
}

/// <summary>What to publish: the staged directory (the Kubernetes checkpoint layout) and what to record about it.</summary>
public sealed record CheckpointPublishRequest
{
    public required CheckpointId Id { get; init; }

    public required string SourceDirectory { get; init; }

    public Codecs.CodecSettings Codec { get; init; } = Codecs.CheckpointCodecs.Default;

    public string? SourceNode { get; init; }

    public PodReference? Pod { get; init; }

    public ContainerReference? Container { get; init; }

    public string? ImageReference { get; init; }

    public string? CriuVersion { get; init; }

    public string? Runtime { get; init; }

    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    public bool Pinned { get; init; }

    /// <summary>
    /// Digests of files under <see cref="SourceDirectory"/> (by their path in the archive) that were computed while the
    /// files were written; these are read but not hashed again.
    /// </summary>
    public IReadOnlyDictionary<string, IO.FileDigest>? KnownDigests { get; init; }

    /// <summary>
    /// Seal before durable. Null (the default): nothing of the checkpoint is visible before its durable publication. Set:
    /// once the archive's bytes are written, and before they are made durable, this runs (the caller records that its
    /// source may be handed over from here on), then the signed manifest is put beside the archive in the staging, where a
    /// follower (<see cref="ICheckpointStore.ExtractFollowingAsync"/>) verifies the archive against it and may use it at
    /// once; <see cref="Sealed"/> is told, and the files are made durable and published as usual. A failure after the seal
    /// still removes the staging: whoever followed has its own verified copy.
    /// </summary>
    public Func<CancellationToken, Task>? BeforeSeal { get; init; }

    /// <summary>Awaited once the manifest is sealed in the staging (with <see cref="BeforeSeal"/> only).</summary>
    public Func<CancellationToken, Task>? Sealed { get; init; }
}

/// <summary>A published checkpoint: its manifest and where its files are.</summary>
public sealed record StoredCheckpoint(CheckpointManifest Manifest, string Directory, string ArchivePath)
{
    public CheckpointId Id => CheckpointId.Parse(Manifest.CheckpointId);

    /// <summary>
    /// The agent whose signature over the manifest was verified; null when it was not checked (listings) or the
    /// checkpoint is unsigned and unsigned ones are allowed.
    /// </summary>
    public Tls.CheckpointSigner? Signer { get; init; }
}

/// <summary>
/// Which checkpoints to keep. Each limit is optional; pinned checkpoints are never removed and are not counted in
/// <see cref="KeepLastPerPod"/> (they do count toward <see cref="MaxTotalBytes"/>).
/// </summary>
public sealed record RetentionPolicy(int? KeepLastPerPod = null, TimeSpan? MaxAge = null, long? MaxTotalBytes = null);
