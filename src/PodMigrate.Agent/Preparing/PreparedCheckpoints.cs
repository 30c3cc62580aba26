using System.IO.Compression;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Store;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Agent.Preparing;

/// <summary>
/// Checkpoints prepared for this node's <c>podmigrate</c> runtime handler (<see cref="PreparedLayout"/>): fetched from
/// the share through the store (which verifies digests and, where configured, signatures), unpacked into
/// <c>&lt;root&gt;/&lt;id&gt;/</c> (0700), cut down to what the runtime consumes — CRIU's images, the rootfs diff as a plain
/// tar, deleted.files — and sealed last with <see cref="PreparedCheckpoint"/>, which names the one pod and container
/// that may consume it. Nothing from spec.dump or config.dump is kept: the clone pod's own spec wins; spec.dump's mount
/// destinations are read only to list what the new spec must also have. Any link, device or other special file
/// anywhere in the checkpoint refuses it. Every failure removes the directory.
/// </summary>
internal sealed class PreparedCheckpoints(
    IOptions<AgentOptions> options,
    ICheckpointStore store,
    Node.Cri.CriConnection cri,
    OperationGate gate,
    Checkpointing.CommitPointProbe probe,
    TimeProvider time,
    ILogger<PreparedCheckpoints> logger)
{
    private const string ExtractDirectory = ".archive";
    private readonly AgentOptions _options = options.Value;

    /// <summary>The staging root in effect (the agent's option, else PODMIGRATE_PREPARED_DIR, else the default).</summary>
    public string Root => PreparedLayout.ResolveRoot(_options.PreparedDirectory);

    public async Task<PreparedCheckpointInfo> PrepareAsync(PrepareRestoreRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = time.GetTimestamp();
        var id = CheckpointId.Parse(request.CheckpointId);
        if (!KubeNames.IsValidName(request.PodNamespace) || !KubeNames.IsValidName(request.PodName))
        {
            throw PodMigrateException.InvalidArgument($"'{request.PodNamespace}/{request.PodName}' is not a valid pod namespace/name");
        }
        if ((request.Container.Length > 0 && !KubeNames.IsValidName(request.Container)) || (request.PodUid.Length > 0 && !KubeNames.IsValidName(request.PodUid)))
        {
            throw PodMigrateException.InvalidArgument($"'{request.Container}' / '{request.PodUid}' is not a valid container name / pod uid");
        }
        using var deadline = OperationDeadline.Start(request.Timeout, _options.OperationTimeout, cancellationToken, out var timeout);
        using var busy = gate.Enter(GateKey(id), $"prepare of checkpoint {id}");

        var root = EnsureRoot();
        var directory = PreparedLayout.DirectoryOf(root, id.Value);
        if (await ReadSealAsync(directory, deadline.Token) is { } sealedAlready)
        {
            if (sealedAlready.PodNamespace != request.PodNamespace || sealedAlready.PodName != request.PodName
                || (request.Container.Length > 0 && sealedAlready.ContainerName != request.Container)
                || (sealedAlready.PodUid ?? "") != request.PodUid)
            {
                throw PodMigrateException.FailedPrecondition(
                    $"checkpoint {id} is prepared on this node for {sealedAlready.PodNamespace}/{sealedAlready.PodName} container {sealedAlready.ContainerName}, not for {request.PodNamespace}/{request.PodName}; release it first");
            }
            return Info(sealedAlready, directory, bytes: 0, [], time.GetElapsedTime(started), already: true);
        }
        if (Directory.Exists(directory))
        {
            // Unsealed: an attempt that died half-way. Never consumed; start over.
            Directory.Delete(directory, recursive: true);
        }

        var timings = new List<PhaseTiming>();
        DurableFileSystem.CreatePrivateDirectory(directory);
        try
        {
            var pull = PullImageAsync(request.Image, deadline.Token);
            var extract = Path.Combine(directory, ExtractDirectory);
            var fetchStarted = time.GetTimestamp();
            // Following: extracted while the source still writes it, verified whole once published, before the seal.
            var stored = request.Follow
                ? await store.ExtractFollowingAsync(id, extract, deadline.Token)
                : await store.ExtractAsync(id, extract, deadline.Token, ArchiveVerification.ArchiveDigest);
            timings.Add(Timing(Phase.Fetch, time.GetElapsedTime(fetchStarted)));
            await pull;

            var unpackStarted = time.GetTimestamp();
            var bytes = RefuseSpecialEntries(extract, id);
            var mounts = MountDestinations(Path.Combine(extract, CheckpointLayout.SpecDumpFile), id);
            // What CRIU will give back to each thread: the runtime refuses more than the clone's spec grants.
            var threads = CheckpointedCredentials.Read(Path.Combine(extract, CheckpointLayout.CheckpointDirectory));
            await MoveConsumedFilesAsync(extract, directory, id, deadline.Token);
            Directory.Delete(extract, recursive: true);
            timings.Add(Timing(Phase.Unpack, time.GetElapsedTime(unpackStarted)));

            var seal = new PreparedCheckpoint
            {
                CheckpointId = id.Value,
                PodNamespace = request.PodNamespace,
                PodName = request.PodName,
                PodUid = request.PodUid.Length > 0 ? request.PodUid : null,
                ContainerName = request.Container.Length > 0 ? request.Container : stored.Manifest.Container?.Name
                    ?? throw PodMigrateException.InvalidArgument($"checkpoint {id} does not name its container: give the container"),
                MountDestinations = mounts,
                Threads = threads,
                ArchiveSha256 = stored.Manifest.ArchiveSha256,
                PreparedAt = time.GetUtcNow(),
            };
            await probe.ReachedAsync(Checkpointing.CommitPoint.BeforePrepareSeal, id.Value, deadline.Token);
            // Last, and atomically: its presence is what makes the directory prepared.
            await DurableFileSystem.WriteFileAtomicallyAsync(Path.Combine(directory, PreparedLayout.SealFile),
                JsonSerializer.SerializeToUtf8Bytes(seal, RuntimeContractJson.Default.PreparedCheckpoint), deadline.Token);
            await probe.ReachedAsync(Checkpointing.CommitPoint.AfterPrepareSeal, id.Value, deadline.Token);
            var wall = time.GetElapsedTime(started);
            AgentLog.CheckpointPrepared(logger, id.Value, $"{seal.PodNamespace}/{seal.PodName}", seal.ContainerName, directory, wall.TotalMilliseconds);
            return Info(seal, directory, bytes, timings, wall, already: false);
        }
        catch (Exception e) when (e is not OperationCanceledException || deadline.IsCancellationRequested)
        {
            RemoveQuietly(directory);
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"prepare of checkpoint {id} did not finish within {timeout}; nothing was left staged", e);
            }
            if (e is PodMigrateException failure)
            {
                AgentLog.PrepareFailed(logger, id.Value, failure.Kind, failure.Message);
            }
            throw;
        }
    }

    /// <summary>Pulls the clone's image through the node's CRI, as its kubelet would; a failure is logged and left to the kubelet.</summary>
    private async Task PullImageAsync(string image, CancellationToken cancellationToken)
    {
        if (image.Length == 0)
        {
            return;
        }
        await Task.Yield();
        try
        {
            await cri.Images.PullImageAsync(image, sandboxConfig: null, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
        {
            AgentLog.PrepareImagePullFailed(logger, image, e.Message);
        }
    }

    /// <summary>Removes a prepared checkpoint and the runtime's record of its restore; false when neither was there.</summary>
    public Task<bool> ReleaseAsync(string checkpointId, CancellationToken cancellationToken)
    {
        var id = CheckpointId.Parse(checkpointId);
        cancellationToken.ThrowIfCancellationRequested();
        using var busy = gate.Enter(GateKey(id), $"release of prepared checkpoint {id}");
        var root = Root;
        var directory = PreparedLayout.DirectoryOf(root, id.Value);
        var removed = false;
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
            removed = true;
        }
        foreach (var record in (string[])[PreparedLayout.RestoredRecordOf(root, id.Value), PreparedLayout.PagesRecordOf(root, id.Value)])
        {
            if (File.Exists(record))
            {
                File.Delete(record);
                removed = true;
            }
        }
        if (removed)
        {
            AgentLog.PreparedReleased(logger, id.Value);
        }
        return Task.FromResult(removed);
    }

    /// <summary>What the runtime wrote once it restored the checkpoint; NotFound before.</summary>
    public async Task<RestoredInfo> GetRestoredAsync(string checkpointId, CancellationToken cancellationToken)
    {
        var id = CheckpointId.Parse(checkpointId);
        var path = PreparedLayout.RestoredRecordOf(Root, id.Value);
        byte[] json;
        try
        {
            json = await File.ReadAllBytesAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"checkpoint {id} has not been restored by this node's runtime (no {path})");
        }
        RestoredRecord record;
        try
        {
            record = JsonSerializer.Deserialize(json, RuntimeContractJson.Default.RestoredRecord)
                ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{path} is not a restore record: {e.Message}", e);
        }
        if (record.CheckpointId != id.Value)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{path} records checkpoint {record.CheckpointId}, not {id}");
        }
        var info = new RestoredInfo
        {
            CheckpointId = record.CheckpointId,
            ContainerId = record.ContainerId,
            RestoredAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UnixEpoch.AddTicks(record.RestoredAtUnixNanos / 100)),
            Restore = Duration.FromTimeSpan(TimeSpan.FromSeconds(record.RestoreSeconds)),
            LazyPages = record.LazyPages,
        };
        if (record.LazyPages && await ReadPagesRecordAsync(id, cancellationToken) is { } pages)
        {
            if (pages.FilledAtUnixNanos is { } filled)
            {
                info.PagesFilledAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UnixEpoch.AddTicks(filled / 100));
            }
            info.PagesFailure = pages.Failure ?? (pages.FilledAtUnixNanos is null ? "the lazy-pages record names no outcome" : "");
            info.PagesFill = Duration.FromTimeSpan(TimeSpan.FromSeconds(pages.Seconds));
        }
        return info;
    }

    /// <summary>The runtime's lazy-pages outcome (null while the daemon still serves pages).</summary>
    private async Task<LazyPagesRecord?> ReadPagesRecordAsync(CheckpointId id, CancellationToken cancellationToken)
    {
        var path = PreparedLayout.PagesRecordOf(Root, id.Value);
        try
        {
            var record = JsonSerializer.Deserialize(await File.ReadAllBytesAsync(path, cancellationToken), RuntimeContractJson.Default.LazyPagesRecord)
                ?? throw new JsonException("null");
            return record.CheckpointId == id.Value ? record
                : throw new PodMigrateException(ErrorKind.DataLoss, $"{path} records checkpoint {record.CheckpointId}, not {id}");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{path} is not a lazy-pages record: {e.Message}", e);
        }
    }

    /// <summary>
    /// Removes staging nobody will consume: at start-up every unsealed directory (its agent died mid-prepare); always,
    /// whatever is older than <see cref="AgentOptions.PreparedMaxAge"/> (a controller that never came back for it).
    /// Directories a prepare or release holds right now are left alone. Returns how many entries went.
    /// </summary>
    public int Sweep(bool startup)
    {
        var root = Root;
        if (!Directory.Exists(root))
        {
            return 0;
        }
        var now = time.GetUtcNow();
        var removed = 0;
        foreach (var entry in new DirectoryInfo(root).EnumerateFileSystemInfos())
        {
            var name = entry.Name;
            var idText = name.EndsWith(PreparedLayout.RestoredSuffix, StringComparison.Ordinal) ? name[..^PreparedLayout.RestoredSuffix.Length]
                : name.EndsWith(PreparedLayout.PagesSuffix, StringComparison.Ordinal) ? name[..^PreparedLayout.PagesSuffix.Length]
                : name;
            if (!CheckpointId.TryParse(idText, out var id) || gate.HolderOf(GateKey(id)) is not null)
            {
                continue;
            }
            if (entry is DirectoryInfo && ClaimedByLiveProcess(entry.FullName))
            {
                // A restore runs from it, or the runtime's lazy-pages daemon still serves pages from it (the seal is
                // gone once restored): its runtime removes it when done, or fails loudly after a bounded time.
                continue;
            }
            var old = now - entry.LastWriteTimeUtc > _options.PreparedMaxAge;
            var unsealed = entry is DirectoryInfo && !File.Exists(Path.Combine(entry.FullName, PreparedLayout.SealFile));
            if (!(old || (startup && unsealed)))
            {
                continue;
            }
            try
            {
                if (entry is DirectoryInfo && entry.LinkTarget is null)
                {
                    Directory.Delete(entry.FullName, recursive: true);
                }
                else
                {
                    File.Delete(entry.FullName);
                }
                removed++;
                AgentLog.RemovedPreparedStaging(logger, entry.FullName, unsealed ? "unsealed" : "expired");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                AgentLog.PreparedSweepFailed(logger, e, entry.FullName);
            }
        }
        return removed;
    }

    /// <summary>The runtime's claim file ("pid container-id") names a process that still runs.</summary>
    private static bool ClaimedByLiveProcess(string directory)
    {
        string claim;
        try
        {
            claim = File.ReadAllText(Path.Combine(directory, PreparedLayout.ClaimFile));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
        return int.TryParse(claim.Split(' ', 2)[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)
            && Directory.Exists($"/proc/{pid}");
    }

    private static string GateKey(CheckpointId id) => "prepared:" + id.Value;

    private string EnsureRoot()
    {
        var root = Root;
        if (new DirectoryInfo(root) is { Exists: true, LinkTarget: not null })
        {
            throw PodMigrateException.FailedPrecondition($"prepared staging root {root} is a symlink; refusing to stage there");
        }
        DurableFileSystem.CreatePrivateDirectory(root);
        // Root-only whatever it was made with: a restore runs as root from what is in here.
        DurableFileSystem.SetMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return root;
    }

    private static async Task<PreparedCheckpoint?> ReadSealAsync(string directory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(directory, PreparedLayout.SealFile);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize(await File.ReadAllBytesAsync(path, cancellationToken), RuntimeContractJson.Default.PreparedCheckpoint);
        }
        catch (JsonException)
        {
            return null; // unreadable: treated as unsealed and prepared again
        }
    }

    /// <summary>The archive reader keeps links inside the target; prepared staging takes none at all, nor anything but files and directories.</summary>
    private static long RefuseSpecialEntries(string extract, CheckpointId id)
    {
        long bytes = 0;
        foreach (var entry in new DirectoryInfo(extract).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            var relative = Path.GetRelativePath(extract, entry.FullName);
            var kind = FileKinds.Of(entry.FullName);
            if (kind == FileKind.Symlink)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: refused archive entry \"{relative}\": it is a link (to \"{entry.LinkTarget}\"); a prepared checkpoint holds no links");
            }
            if (kind is not (FileKind.Regular or FileKind.Directory))
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: refused archive entry \"{relative}\": it is a {kind}; a prepared checkpoint holds only files and directories");
            }
            if (entry is FileInfo file)
            {
                bytes += file.Length;
            }
        }
        return bytes;
    }

    /// <summary>spec.dump's mount destinations: informational, never applied (the runtime checks the new spec has each).</summary>
    private static List<string> MountDestinations(string specDump, CheckpointId id)
    {
        if (!File.Exists(specDump))
        {
            return [];
        }
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(specDump));
            var destinations = new List<string>();
            if (document.RootElement.TryGetProperty("mounts", out var mounts) && mounts.ValueKind == JsonValueKind.Array)
            {
                foreach (var mount in mounts.EnumerateArray())
                {
                    if (mount.TryGetProperty("destination", out var destination) && destination.GetString() is { Length: > 0 } path && !destinations.Contains(path))
                    {
                        destinations.Add(path);
                    }
                }
            }
            return destinations;
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: {CheckpointLayout.SpecDumpFile} is not JSON: {e.Message}", e);
        }
    }

    /// <summary>checkpoint/ as it is; the rootfs diff as a plain tar (containerd writes it gzip'd); deleted.files checked to be a JSON array of strings.</summary>
    private static async Task MoveConsumedFilesAsync(string extract, string directory, CheckpointId id, CancellationToken cancellationToken)
    {
        var images = Path.Combine(extract, CheckpointLayout.CheckpointDirectory);
        if (!Directory.Exists(images))
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id} has no {CheckpointLayout.CheckpointDirectory}/ directory of CRIU images");
        }
        Directory.Move(images, Path.Combine(directory, PreparedLayout.ImagesDirectory));

        var diff = Path.Combine(extract, CheckpointLayout.RootFsDiffTar);
        if (File.Exists(diff))
        {
            var destination = Path.Combine(directory, PreparedLayout.RootFsDiffTar);
            if (await IsGzipAsync(diff, cancellationToken))
            {
                await using var input = DurableFileSystem.OpenSequentialRead(diff);
                await using var gzip = new GZipStream(input, CompressionMode.Decompress);
                await using var output = DurableFileSystem.CreatePrivateFile(destination);
                await gzip.CopyToAsync(output, cancellationToken);
            }
            else
            {
                File.Move(diff, destination);
            }
        }

        var deleted = Path.Combine(extract, CheckpointLayout.DeletedFilesFile);
        if (File.Exists(deleted))
        {
            try
            {
                JsonSerializer.Deserialize(await File.ReadAllBytesAsync(deleted, cancellationToken), PreparedJson.Default.StringArray);
            }
            catch (JsonException e)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {id}: {CheckpointLayout.DeletedFilesFile} is not a JSON array of paths: {e.Message}", e);
            }
            File.Move(deleted, Path.Combine(directory, PreparedLayout.DeletedFilesFile));
        }
    }

    private static async Task<bool> IsGzipAsync(string path, CancellationToken cancellationToken)
    {
        await using var file = File.OpenRead(path);
        var magic = new byte[2];
        return await file.ReadAtLeastAsync(magic, 2, throwOnEndOfStream: false, cancellationToken) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    private void RemoveQuietly(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            AgentLog.PreparedSweepFailed(logger, e, directory);
        }
    }

    private static PhaseTiming Timing(Phase phase, TimeSpan duration) => new() { Phase = phase, Duration = Duration.FromTimeSpan(duration) };

    private static PreparedCheckpointInfo Info(PreparedCheckpoint seal, string directory, long bytes, IEnumerable<PhaseTiming> timings, TimeSpan wall, bool already)
    {
        var info = new PreparedCheckpointInfo
        {
            CheckpointId = seal.CheckpointId,
            Path = directory,
            PodNamespace = seal.PodNamespace,
            PodName = seal.PodName,
            PodUid = seal.PodUid ?? "",
            Container = seal.ContainerName,
            Bytes = bytes,
            Wall = Duration.FromTimeSpan(wall),
            AlreadyPrepared = already,
        };
        info.MountDestinations.Add(seal.MountDestinations);
        info.Timings.Add(timings);
        return info;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string[]), TypeInfoPropertyName = "StringArray")]
internal sealed partial class PreparedJson : System.Text.Json.Serialization.JsonSerializerContext;
