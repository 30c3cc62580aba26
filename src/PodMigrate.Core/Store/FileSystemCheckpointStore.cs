using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Store;

/// <summary>
/// The checkpoint store over a directory (a host directory here, NFS/SMB in production):
/// <c>&lt;root&gt;/checkpoints/&lt;id&gt;/{archive.tar.zst, podmigrate.manifest.json, podmigrate.manifest.sig}</c>. A publish
/// is staged in <c>checkpoints/.staging/&lt;id&gt;.&lt;writer&gt;-&lt;random&gt;.partial/</c> (a name no other writer can pick, so
/// no exclusive create is needed), files fsynced, manifest last; on a network share the files are then read back and their
/// digests checked (its fsync may send nothing); then the directory is renamed into place without replacing anything,
/// and the manifest is read back from its final name and compared with the bytes written: another writer that
/// published the same id first (a rename that cannot refuse atomically, as through smbnetfs) is detected there, and the
/// loser gets AlreadyExists. A delete first renames the checkpoint back into staging. So a listed checkpoint is always
/// complete. Nothing relies on O_EXCL, RENAME_NOREPLACE, locks, links, modes or free-space figures a share may not keep
/// (see the README's "SMB and NFS shares"). The manifest is signed as it is published and never rewritten (a pin is a marker file beside it); every
/// read but a listing verifies the signature over the manifest's exact bytes before it parses them for use, and the
/// manifest's digests then cover the archive and every file in it. Whoever can only write to the share cannot plant or
/// alter a checkpoint that a reader hands out.
/// </summary>
public sealed class FileSystemCheckpointStore : ICheckpointStore
{
    private const string CheckpointsDirectoryName = "checkpoints";
    private const string StagingDirectoryName = ".staging";
    private const string PartialSuffix = ".partial";
    private const string ArchiveBaseName = "archive";

    /// <summary>How often a reader following an archive being written looks for more bytes or the manifest.</summary>
    private static readonly TimeSpan FollowPoll = TimeSpan.FromMilliseconds(10);
    private const int ArchiveBufferSize = 1 << 20;
    // A manifest lists a few hundred files; a larger one is not read whole into memory (it fails its checks instead).
    private const int MaxManifestBytes = 64 << 20;

    private readonly FileSystemCheckpointStoreOptions _options;
    private readonly CheckpointSignatures _signatures;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _checkpoints;
    private readonly string _staging;
    private readonly string _writer;

    public FileSystemCheckpointStore(FileSystemCheckpointStoreOptions options, TimeProvider time, ILogger<FileSystemCheckpointStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        if (string.IsNullOrWhiteSpace(options.Root))
        {
            throw PodMigrateException.InvalidArgument("the checkpoint store needs a root directory");
        }

        _options = options;
        _time = time;
        _signatures = options.Signatures ?? new CheckpointSignatures(signingMaterial: null, trustedCas: () => [], allowUnsigned: false, time);
        _logger = logger ?? NullLogger<FileSystemCheckpointStore>.Instance;
        _checkpoints = Path.Combine(Path.GetFullPath(options.Root), CheckpointsDirectoryName);
        _staging = Path.Combine(_checkpoints, StagingDirectoryName);
        _writer = WriterLabel(options.WriterName ?? Environment.MachineName);
    }

    /// <summary>A writer name as it can appear in a file name: lowercase letters, digits and '-', at most 40 characters.</summary>
    internal static string WriterLabel(string name)
    {
        var label = new string(name.ToLowerInvariant().Select(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' ? c : '-').Take(40).ToArray());
        return label.Length == 0 ? "writer" : label;
    }

    public string CheckpointsDirectory => _checkpoints;

    /// <summary>
    /// The rename that publishes (a test seam: a share whose rename cannot refuse an existing target is emulated by one
    /// that reports success while another writer's checkpoint lands under the name).
    /// </summary>
    internal Func<string, string, bool> RenameNoReplace { get; init; } = DurableFileSystem.TryRenameNoReplace;

    public long? GetAvailableBytes()
    {
        EnsureLayout();
        return DurableFileSystem.TryGetAvailableBytes(_checkpoints);
    }

    public async Task<StoredCheckpoint> PublishAsync(CheckpointPublishRequest request, IProgress<ArchiveProgress>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var id = request.Id.Value ?? throw PodMigrateException.InvalidArgument("a checkpoint id is required");
        var attempt = new PublishAttempt();
        try
        {
            return await PublishAsync(request, id, attempt, progress, cancellationToken);
        }
        catch (IOException e) when (DurableFileSystem.IsOutOfSpace(e))
        {
            throw new PodMigrateException(ErrorKind.ResourceExhausted, $"checkpoint {id}: the share {_checkpoints} is full", e);
        }
        catch (IOException e) when (DurableFileSystem.IsShareFailure(e))
        {
            // Not Unavailable: that tells a caller the agent was unreachable and to retry at once; a checkpoint whose
            // share failed mid-write is to be given up (and the source resumed), not retried with the source frozen.
            throw new PodMigrateException(ErrorKind.Aborted, attempt.Renamed
                ? $"checkpoint {id}: the share {_checkpoints} failed right after the checkpoint was renamed into place ({e.Message}); whether it was published can only be told by reading the share again"
                : $"checkpoint {id}: the share {_checkpoints} failed while the checkpoint was written ({e.Message}); nothing was published", e);
        }
    }

    private async Task<StoredCheckpoint> PublishAsync(CheckpointPublishRequest request, string id, PublishAttempt attempt, IProgress<ArchiveProgress>? progress, CancellationToken cancellationToken)
    {
        var codec = CheckpointCodecs.Resolve(request.Codec.Name, request.Codec.Level);
        if (!_signatures.CanSign && !_signatures.AllowUnsigned)
        {
            throw PodMigrateException.FailedPrecondition(
                $"checkpoint {id}: this store has no certificate and key to sign checkpoints with, and no reader would accept an unsigned one");
        }

        if (!Directory.Exists(request.SourceDirectory))
        {
            throw PodMigrateException.NotFound($"checkpoint {id}: source directory {request.SourceDirectory} does not exist");
        }

        EnsureLayout();
        var final = Path.Combine(_checkpoints, id);
        if (Path.Exists(final))
        {
            throw AlreadyExists(id);
        }

        if (Directory.EnumerateDirectories(_staging, id + ".*" + PartialSuffix).Any())
        {
            // Best effort (another node may start a moment later): the read-back after the rename settles a real race.
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"checkpoint {id} is already being published to {_checkpoints}");
        }

        CheckFreeSpace(id, EstimateBytes(request.SourceDirectory));
        var staging = Path.Combine(_staging, StagingName(id));
        if (!DurableFileSystem.TryCreateDirectoryExclusive(staging))
        {
            throw new PodMigrateException(ErrorKind.Internal, $"checkpoint {id}: staging directory {staging} already exists (its name has 64 random bits)");
        }

        try
        {
            var archiveName = ArchiveBaseName + CheckpointCodecs.Get(codec.Name).ArchiveExtension;
            var archivePath = Path.Combine(staging, archiveName);
            var sealEarly = request.BeforeSeal is not null;
            ArchiveWriteResult written;
            await using (var archive = DurableFileSystem.CreatePrivateFile(archivePath, bufferSize: ArchiveBufferSize))
            {
                // Sealed early, the write goes at the page cache's pace and the disk's is paid after the seal, off the pause.
                written = await CheckpointArchiveWriter.WriteAsync(request.SourceDirectory, archive, codec, progress, cancellationToken, request.KnownDigests,
                    startWriteback: !sealEarly);
                await archive.FlushAsync(cancellationToken);
                if (!sealEarly)
                {
                    archive.Flush(flushToDisk: true);
                }
            }

            var manifest = new CheckpointManifest
            {
                CheckpointId = id,
                CreatedAt = _time.GetUtcNow(),
                SourceNode = request.SourceNode,
                Pod = request.Pod,
                Container = request.Container,
                ImageReference = request.ImageReference,
                CriuVersion = request.CriuVersion,
                Runtime = request.Runtime,
                Codec = codec,
                RawSize = written.RawSize,
                CompressedSize = written.CompressedSize,
                ArchiveSha256 = written.ArchiveSha256,
                Files = written.Files,
                Labels = request.Labels is null ? [] : new Dictionary<string, string>(request.Labels),
            };

            // These bytes are what is signed and what every reader verifies, byte for byte; nothing rewrites them.
            var manifestBytes = ArchiveJson.SerializeManifest(manifest);
            var signature = _signatures.Sign(manifestBytes);
            if (sealEarly)
            {
                // Sealed before durable: a follower may restore from what it verified against this manifest from here on,
                // while the bytes reach stable storage. The caller has recorded that first.
                await request.BeforeSeal!(cancellationToken);
            }
            if (signature is not null)
            {
                await WriteNewFileAsync(Path.Combine(staging, CheckpointLayout.SignatureFile), signature, durable: !sealEarly, cancellationToken);
            }

            if (request.Pinned)
            {
                await WriteNewFileAsync(Path.Combine(staging, CheckpointLayout.PinnedMarkerFile), ReadOnlyMemory<byte>.Empty, durable: !sealEarly, cancellationToken);
                manifest = manifest with { Pinned = true };
            }

            // The manifest is written last, whole or not at all: a directory with a manifest is complete.
            await DurableFileSystem.WriteFileAtomicallyAsync(Path.Combine(staging, CheckpointLayout.ManifestFile), manifestBytes, durable: !sealEarly, cancellationToken);
            if (sealEarly)
            {
                StoreLog.Sealed(_logger, id, written.CompressedSize);
                if (request.Sealed is { } sealedCallback)
                {
                    await sealedCallback(cancellationToken);
                }
                var syncStarted = _time.GetTimestamp();
                await Task.Run(() =>
                {
                    DurableFileSystem.FsyncFile(archivePath);
                    foreach (var file in StagedFiles(staging, signature is not null, request.Pinned))
                    {
                        DurableFileSystem.FsyncFile(file);
                    }
                }, cancellationToken);
                var syncTook = _time.GetElapsedTime(syncStarted);
                StoreLog.MadeDurable(_logger, id, (long)syncTook.TotalMilliseconds);
            }

            DurableFileSystem.FsyncDirectory(staging);
            if (ShouldReadBack())
            {
                // What the share's server holds now, read through a fresh open (a FUSE client then asks the server again).
                await ReadBackAsync(id, Path.Combine(staging, archiveName), written.CompressedSize, written.ArchiveSha256, cancellationToken);
                ReadBackExactly(id, Path.Combine(staging, CheckpointLayout.ManifestFile), manifestBytes);
                if (signature is not null)
                {
                    ReadBackExactly(id, Path.Combine(staging, CheckpointLayout.SignatureFile), signature);
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (!RenameNoReplace(staging, final))
            {
                throw AlreadyExists(id);
            }

            attempt.Renamed = true;
            // The rename is the commit only if what is under the final name now is what this writer wrote: a share whose
            // rename cannot refuse an existing target atomically may have let another writer of the same id win.
            if (!IsOurs(final, manifestBytes))
            {
                StoreLog.PublishRaceLost(_logger, id, final);
                RemoveQuietly(staging);
                throw new PodMigrateException(ErrorKind.AlreadyExists, $"checkpoint {id} was published by another writer at the same time in {_checkpoints}");
            }

            DurableFileSystem.FsyncDirectory(_checkpoints);
            DurableFileSystem.FsyncDirectory(_staging);
            StoreLog.Published(_logger, id, manifest.CompressedSize, manifest.RawSize, codec.Name);
            return new StoredCheckpoint(manifest, final, Path.Combine(final, archiveName));
        }
        finally
        {
            if (!attempt.Renamed)
            {
                RemoveQuietly(staging);
            }
        }
    }

    public Task<IReadOnlyList<StoredCheckpoint>> ListAsync(PodReference? pod, CancellationToken cancellationToken)
    {
        EnsureLayout();
        var found = new List<StoredCheckpoint>();
        foreach (var directory in Directory.EnumerateDirectories(_checkpoints))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!CheckpointId.TryParse(Path.GetFileName(directory), out var id))
            {
                continue; // .staging and anything that is not ours
            }

            StoredCheckpoint checkpoint;
            try
            {
                checkpoint = TryRead(id, verify: false) ?? throw NotFound(id);
            }
            catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.DataLoss or ErrorKind.FailedPrecondition)
            {
                // Deleted meanwhile, or damaged: listing goes on; Get/Verify report the damage.
                StoreLog.UnreadableSkipped(_logger, directory, e);
                continue;
            }

            if (pod is null || (checkpoint.Manifest.Pod is { } p && p.Namespace == pod.Namespace && p.Name == pod.Name))
            {
                found.Add(checkpoint);
            }
        }

        found.Sort(NewestFirst);
        return Task.FromResult<IReadOnlyList<StoredCheckpoint>>(found);
    }

    public Task<StoredCheckpoint> GetAsync(CheckpointId id, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(Read(id));
    }

    public async Task<StoredCheckpoint> VerifyAsync(CheckpointId id, CancellationToken cancellationToken)
    {
        var checkpoint = Read(id);
        await using var stream = OpenArchive(checkpoint);
        await CheckpointArchiveReader.VerifyAsync(stream, checkpoint.Manifest, cancellationToken);
        return checkpoint;
    }

    public async Task<StoredCheckpoint> ExtractAsync(CheckpointId id, string targetDirectory, CancellationToken cancellationToken, ArchiveVerification verification = ArchiveVerification.EveryFile)
    {
        var checkpoint = Read(id);
        await using var stream = OpenArchive(checkpoint);
        await CheckpointArchiveReader.ExtractAsync(stream, checkpoint.Manifest, targetDirectory, cancellationToken, verification);
        return checkpoint;
    }

    public async Task<StoredCheckpoint> ExtractFollowingAsync(CheckpointId id, string targetDirectory, CancellationToken cancellationToken)
    {
        bool? remote = null;
        while (true)
        {
            if (TryRead(id, verify: true) is { } published)
            {
                // Published already: the ordinary verified extraction.
                await using var stream = OpenArchive(published);
                await CheckpointArchiveReader.ExtractAsync(stream, published.Manifest, targetDirectory, cancellationToken, ArchiveVerification.ArchiveDigest);
                return published;
            }
            // Asked once the checkpoints directory exists: a store nothing was published to yet gets it from its first
            // writer, and until then nothing can be being written (a follower often starts before the source's publish).
            remote ??= Directory.Exists(_checkpoints) ? DurableFileSystem.IsRemoteFileSystem(_checkpoints) : null;
            if (remote is null)
            {
                await Task.Delay(FollowPoll, _time, cancellationToken);
                continue;
            }
            if (remote.Value)
            {
                // Not on a network share: an SMB client holding the writer's staging open makes the writer's rename into
                // place and its clean-up of an abandoned staging fail (EBUSY, delete pending). Wait for the publication.
                await Task.Delay(FollowPoll, _time, cancellationToken);
                continue;
            }
            // The writer's staging (its name ends in the writer's own random part, see StagingName). Should two writers
            // race for the id, following the loser ends in a digest mismatch and the caller prepares the published one.
            var partial = StagingOf(id.Value) ?? Path.Combine(_staging, id.Value + PartialSuffix);
            foreach (var codec in CheckpointCodecs.All)
            {
                // The writer's FileStream holds .NET's exclusive advisory lock on it: opened around it.
                if (DurableFileSystem.TryOpenReadWhileWritten(Path.Combine(partial, ArchiveBaseName + codec.ArchiveExtension)) is not { } archive)
                {
                    continue;
                }
                {
                    StoredCheckpoint? checkpoint = null;
                    await using var growing = new GrowingFileStream(archive, () => (checkpoint = TryRead(id, verify: true) ?? TryReadSealed(partial, id))?.Manifest.CompressedSize,
                        () => Directory.Exists(partial), id.Value, _time);
                    await CheckpointArchiveReader.ExtractThenVerifyAsync(growing, CheckpointCodecs.Resolve(codec.Name, null), id.Value, targetDirectory,
                        _ => Task.FromResult((checkpoint ?? Read(id)).Manifest), cancellationToken);
                    StoreLog.ExtractedWhilePublished(_logger, id.Value);
                    return checkpoint ?? Read(id);
                }
            }
            // Neither published nor being written yet: the source is still dumping.
            await Task.Delay(FollowPoll, _time, cancellationToken);
        }
    }

    public async Task<(StoredCheckpoint Checkpoint, CheckpointLayer Layer)> WriteImageLayerAsync(
        CheckpointId id, Stream destination, CheckpointTarCopyOptions options, CancellationToken cancellationToken)
    {
        var checkpoint = Read(id);
        await using var stream = OpenArchive(checkpoint);
        var layer = await CheckpointImage.WriteLayerAsync(stream, checkpoint.Manifest, destination, options, cancellationToken);
        return (checkpoint, layer);
    }

    public Task DeleteAsync(CheckpointId id, bool force, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var directory = DirectoryOf(id);
        if (!Directory.Exists(directory))
        {
            throw NotFound(id);
        }

        if (!force && TryRead(id, verify: false) is { Manifest.Pinned: true })
        {
            throw PodMigrateException.FailedPrecondition($"checkpoint {id} is pinned: unpin it or force the delete");
        }

        Remove(id, directory);
        StoreLog.Deleted(_logger, id.Value);
        return Task.CompletedTask;
    }

    public async Task<StoredCheckpoint> SetPinnedAsync(CheckpointId id, bool pinned, CancellationToken cancellationToken)
    {
        // The pin is a marker beside the manifest: the signed manifest is never rewritten.
        var checkpoint = TryRead(id, verify: false) ?? throw NotFound(id);
        if (checkpoint.Manifest.Pinned == pinned)
        {
            return checkpoint;
        }

        var marker = Path.Combine(checkpoint.Directory, CheckpointLayout.PinnedMarkerFile);
        if (pinned)
        {
            await DurableFileSystem.WriteFileAtomicallyAsync(marker, ReadOnlyMemory<byte>.Empty, cancellationToken);
        }
        else
        {
            File.Delete(marker);
            var manifestPath = Path.Combine(checkpoint.Directory, CheckpointLayout.ManifestFile);
            var stored = ArchiveJson.DeserializeManifest(File.ReadAllBytes(manifestPath), manifestPath);
            if (stored.Pinned && !File.Exists(Path.Combine(checkpoint.Directory, CheckpointLayout.SignatureFile)))
            {
                // A manifest from before the pin marker (never signed) carries its pin itself.
                await DurableFileSystem.WriteFileAtomicallyAsync(manifestPath, ArchiveJson.SerializeManifest(stored with { Pinned = false }), cancellationToken);
            }

            DurableFileSystem.FsyncDirectory(checkpoint.Directory);
        }

        return TryRead(id, verify: false) ?? throw NotFound(id);
    }

    public async Task<IReadOnlyList<CheckpointId>> ApplyRetentionAsync(RetentionPolicy policy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.KeepLastPerPod is < 0 || policy.MaxTotalBytes is < 0 || policy.MaxAge < TimeSpan.Zero)
        {
            throw PodMigrateException.InvalidArgument($"invalid retention policy {policy}: limits must not be negative");
        }

        var all = await ListAsync(pod: null, cancellationToken);
        var removals = new Dictionary<string, string>(StringComparer.Ordinal);
        var now = _time.GetUtcNow();
        if (policy.MaxAge is { } maxAge)
        {
            foreach (var checkpoint in all.Where(c => !c.Manifest.Pinned && now - c.Manifest.CreatedAt > maxAge))
            {
                removals.TryAdd(checkpoint.Manifest.CheckpointId, $"older than {maxAge}");
            }
        }

        if (policy.KeepLastPerPod is { } keep)
        {
            foreach (var group in all.Where(c => !c.Manifest.Pinned).GroupBy(c => c.Manifest.Pod?.ToString() ?? ""))
            {
                // `all` is newest first, and GroupBy keeps that order.
                foreach (var checkpoint in group.Skip(keep))
                {
                    removals.TryAdd(checkpoint.Manifest.CheckpointId, $"more than {keep} checkpoints of pod \"{group.Key}\"");
                }
            }
        }

        if (policy.MaxTotalBytes is { } maxBytes)
        {
            var total = all.Where(c => !removals.ContainsKey(c.Manifest.CheckpointId)).Sum(c => c.Manifest.CompressedSize);
            foreach (var checkpoint in all.Reverse())
            {
                if (total <= maxBytes)
                {
                    break;
                }

                if (!checkpoint.Manifest.Pinned && removals.TryAdd(checkpoint.Manifest.CheckpointId, $"the store is over {maxBytes} bytes"))
                {
                    total -= checkpoint.Manifest.CompressedSize;
                }
            }
        }

        var removed = new List<CheckpointId>();
        foreach (var checkpoint in all.Where(c => removals.ContainsKey(c.Manifest.CheckpointId)))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var id = checkpoint.Id;
            if (Directory.Exists(checkpoint.Directory))
            {
                Remove(id, checkpoint.Directory);
                StoreLog.RetentionRemoved(_logger, id.Value, removals[id.Value]);
                removed.Add(id);
            }
        }

        return removed;
    }

    public Task<int> CleanupStagingAsync(TimeSpan olderThan, CancellationToken cancellationToken)
    {
        EnsureLayout();
        var cutoff = _time.GetUtcNow() - olderThan;
        var removed = 0;
        foreach (var path in Directory.EnumerateFileSystemEntries(_staging))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (new DateTimeOffset(Directory.GetLastWriteTimeUtc(path), TimeSpan.Zero) < cutoff)
            {
                RemoveQuietly(path);
                StoreLog.StaleStagingRemoved(_logger, path);
                removed++;
            }
        }

        return Task.FromResult(removed);
    }

    /// <summary>A checkpoint whose manifest's signature was verified (or that is unsigned where unsigned ones are allowed).</summary>
    private StoredCheckpoint Read(CheckpointId id)
        => TryRead(id, verify: true) ?? throw NotFound(id);

    private StoredCheckpoint? TryRead(CheckpointId id, bool verify) => TryReadAt(DirectoryOf(id), id, verify);

    /// <summary>
    /// The manifest sealed in a writer's staging before it is durable (<see cref="CheckpointPublishRequest.BeforeSeal"/>),
    /// its signature verified; null while there is none, or once the staging is gone (published or abandoned meanwhile:
    /// the next look says which).
    /// </summary>
    private StoredCheckpoint? TryReadSealed(string partial, CheckpointId id)
    {
        try
        {
            return TryReadAt(partial, id, verify: true);
        }
        catch (Exception e) when (e is PodMigrateException or IOException && !Directory.Exists(partial))
        {
            return null;
        }
    }

    private StoredCheckpoint? TryReadAt(string directory, CheckpointId id, bool verify)
    {
        var manifestPath = Path.Combine(directory, CheckpointLayout.ManifestFile);
        var json = ReadIfExists(manifestPath, MaxManifestBytes);
        if (json is null)
        {
            return null;
        }

        CheckpointManifest? manifest = null;
        CheckpointSigner? signer = null;
        if (verify)
        {
            // The signature is checked over the bytes as stored before they are believed; the manifest is parsed from
            // the same bytes once they match (to learn when it was signed).
            signer = _signatures.Verify(id.Value, json, () => (manifest = ArchiveJson.DeserializeManifest(json, manifestPath)).CreatedAt,
                ReadIfExists(Path.Combine(directory, CheckpointLayout.SignatureFile), CheckpointSignatures.MaxSignatureFileBytes + 1));
            if (signer is null)
            {
                StoreLog.UnsignedAccepted(_logger, id.Value);
            }
        }

        manifest ??= ArchiveJson.DeserializeManifest(json, manifestPath);
        if (manifest.CheckpointId != id.Value)
        {
            throw signer is not null
                ? PodMigrateException.PermissionDenied($"checkpoint {id} refused: its signed manifest is checkpoint \"{manifest.CheckpointId}\"'s, moved or copied under another name")
                : new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: {manifestPath} names checkpoint \"{manifest.CheckpointId}\"");
        }

        if (!manifest.Pinned && File.Exists(Path.Combine(directory, CheckpointLayout.PinnedMarkerFile)))
        {
            manifest = manifest with { Pinned = true };
        }

        var codec = CheckpointCodecs.Get(manifest.Codec.Name);
        return new StoredCheckpoint(manifest, directory, Path.Combine(directory, ArchiveBaseName + codec.ArchiveExtension)) { Signer = signer };
    }

    /// <summary>A file's content, or null when it (or its directory) does not exist; at most <paramref name="limit"/> bytes are read.</summary>
    private static byte[]? ReadIfExists(string path, int limit = int.MaxValue)
    {
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
            var length = (int)Math.Min(file.Length, limit);
            var content = new byte[length];
            file.ReadExactly(content);
            return content;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// A staging directory's name: the id, this writer's name and 64 random bits. Two writers (of the same id, on two
    /// nodes) never stage into one directory, whether or not mkdir is exclusive across the share's clients.
    /// </summary>
    private string StagingName(string id)
    {
        Span<byte> random = stackalloc byte[8];
        System.Security.Cryptography.RandomNumberGenerator.Fill(random);
        return $"{id}.{_writer}-{Convert.ToHexStringLower(random)}{PartialSuffix}";
    }

    /// <summary>A staging directory of the id being written now (any writer's), or null.</summary>
    private string? StagingOf(string id)
    {
        try
        {
            return Directory.EnumerateDirectories(_staging, $"{id}.*{PartialSuffix}").FirstOrDefault();
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    private bool ShouldReadBack() => _options.ReadBack switch
    {
        ShareReadBack.Always => true,
        ShareReadBack.Never => false,
        _ => DurableFileSystem.IsRemoteFileSystem(_checkpoints),
    };

    /// <summary>Reads a written file back whole and checks its size and sha256 against what the writer computed (DataLoss if not).</summary>
    private static async Task ReadBackAsync(string id, string path, long size, string sha256, CancellationToken cancellationToken)
    {
        await using var stream = DurableFileSystem.OpenSequentialRead(path, ArchiveBufferSize);
        var digest = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(stream, cancellationToken));
        if (stream.Position != size || !string.Equals(digest, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new PodMigrateException(ErrorKind.DataLoss,
                $"checkpoint {id}: the share returned {stream.Position} bytes with sha256 {digest} for {path}, but {size} bytes with sha256 {sha256} were written");
        }
    }

    private static void ReadBackExactly(string id, string path, ReadOnlySpan<byte> written)
    {
        if (!(ReadIfExists(path, written.Length + 1) is { } stored && stored.AsSpan().SequenceEqual(written)))
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: the share did not return the {written.Length} bytes written to {path}");
        }
    }

    /// <summary>Whether the manifest under <paramref name="directory"/> is byte for byte the one this writer wrote.</summary>
    private static bool IsOurs(string directory, ReadOnlySpan<byte> manifestBytes)
        => ReadIfExists(Path.Combine(directory, CheckpointLayout.ManifestFile), manifestBytes.Length + 1) is { } stored
            && stored.AsSpan().SequenceEqual(manifestBytes);

    private static async Task WriteNewFileAsync(string path, ReadOnlyMemory<byte> content, bool durable, CancellationToken cancellationToken)
    {
        await using var file = DurableFileSystem.CreatePrivateFile(path);
        await file.WriteAsync(content, cancellationToken);
        await file.FlushAsync(cancellationToken);
        if (durable)
        {
            file.Flush(flushToDisk: true);
        }
    }

    /// <summary>The small files a publication puts beside the archive (each fsynced after a seal before durable).</summary>
    private static IEnumerable<string> StagedFiles(string staging, bool signed, bool pinned)
    {
        if (signed)
        {
            yield return Path.Combine(staging, CheckpointLayout.SignatureFile);
        }
        if (pinned)
        {
            yield return Path.Combine(staging, CheckpointLayout.PinnedMarkerFile);
        }
        yield return Path.Combine(staging, CheckpointLayout.ManifestFile);
    }

    /// <summary>Opens the archive after the cheap check (its size) so a truncated blob fails before anything is extracted.</summary>
    private static FileStream OpenArchive(StoredCheckpoint checkpoint)
    {
        FileStream stream;
        try
        {
            stream = DurableFileSystem.OpenSequentialRead(checkpoint.ArchivePath, ArchiveBufferSize);
        }
        catch (FileNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {checkpoint.Manifest.CheckpointId}: archive {checkpoint.ArchivePath} is missing", e);
        }

        if (stream.Length != checkpoint.Manifest.CompressedSize)
        {
            var length = stream.Length;
            stream.Dispose();
            throw new PodMigrateException(ErrorKind.DataLoss,
                $"checkpoint {checkpoint.Manifest.CheckpointId}: archive {checkpoint.ArchivePath} is {length} bytes, the manifest says {checkpoint.Manifest.CompressedSize} (truncated?)");
        }

        return stream;
    }

    /// <summary>Moves a checkpoint out of sight first, so a listing never sees it half deleted.</summary>
    private void Remove(CheckpointId id, string directory)
    {
        EnsureLayout();
        var doomed = Path.Combine(_staging, $"{id}.deleting-{Guid.NewGuid():N}");
        try
        {
            Directory.Move(directory, doomed);
        }
        catch (DirectoryNotFoundException)
        {
            throw NotFound(id);
        }

        DurableFileSystem.FsyncDirectory(_checkpoints);
        RemoveQuietly(doomed);
    }

    private void RemoveQuietly(string path)
    {
        try
        {
            if (FileKinds.OfOrNull(path) == FileKind.Directory)
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for CleanupStagingAsync: it is under .staging, so never listed.
            StoreLog.StagingRemovalFailed(_logger, path, e);
        }
    }

    private void EnsureLayout()
    {
        if (Directory.Exists(_staging))
        {
            return;
        }

        // The root may be a mount point the operator made; what is below it is ours and private.
        Directory.CreateDirectory(Path.GetDirectoryName(_checkpoints)!);
        foreach (var directory in new[] { _checkpoints, _staging })
        {
            if (DurableFileSystem.TryCreateDirectoryExclusive(directory))
            {
                DurableFileSystem.FsyncDirectory(Path.GetDirectoryName(directory)!);
            }
        }
    }

    /// <summary>
    /// Refuses a publish that cannot fit, when the share says how much room it has; when it cannot say (0 blocks in all,
    /// as through smbnetfs) the write itself finds out: ENOSPC ends it as ResourceExhausted and nothing is published.
    /// </summary>
    private void CheckFreeSpace(string id, long needed)
    {
        if (DurableFileSystem.TryGetAvailableBytes(_checkpoints) is not { } available)
        {
            StoreLog.FreeSpaceUnknown(_logger, _checkpoints);
            return;
        }

        if (available < needed + _options.ReserveBytes)
        {
            throw new PodMigrateException(ErrorKind.ResourceExhausted,
                $"checkpoint {id}: the share {_checkpoints} has {available} bytes free, the checkpoint needs up to {needed} plus a reserve of {_options.ReserveBytes}");
        }
    }

    /// <summary>The data to be archived: what a store must at least have room for (compression may need less, never much more).</summary>
    private static long EstimateBytes(string sourceDirectory)
    {
        long total = 0;
        foreach (var file in new DirectoryInfo(sourceDirectory).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            total += file.Length;
        }

        return total;
    }

    private string DirectoryOf(CheckpointId id)
        => Path.Combine(_checkpoints, id.Value ?? throw PodMigrateException.InvalidArgument("a checkpoint id is required"));

    private PodMigrateException NotFound(CheckpointId id) => PodMigrateException.NotFound($"checkpoint {id} not found in {_checkpoints}");

    private PodMigrateException AlreadyExists(string id) => new(ErrorKind.AlreadyExists, $"checkpoint {id} already exists in {_checkpoints}");

    /// <summary>How far a publish got: after the rename, a failure cannot say that nothing was published.</summary>
    private sealed class PublishAttempt
    {
        public bool Renamed { get; set; }
    }

    private static int NewestFirst(StoredCheckpoint a, StoredCheckpoint b)
    {
        var byTime = b.Manifest.CreatedAt.CompareTo(a.Manifest.CreatedAt);
        return byTime != 0 ? byTime : string.CompareOrdinal(b.Manifest.CheckpointId, a.Manifest.CheckpointId);
    }
}
