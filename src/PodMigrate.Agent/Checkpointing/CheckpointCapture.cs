using PodMigrate.Agent.Containers;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Criu;
using PodMigrate.Node.Rootfs;

namespace PodMigrate.Agent.Checkpointing;

/// <summary>What the capture step produced: a staged directory in the Kubernetes checkpoint layout, and its timings.</summary>
/// <param name="KnownDigests">The page images, hashed while CRIU wrote them (by their path in the archive).</param>
internal sealed record CapturedCheckpoint(string Directory, TimeSpan Freeze, TimeSpan Dump, TimeSpan Metadata, IReadOnlyDictionary<string, FileDigest> KnownDigests);

/// <summary>
/// Freezes a container, dumps it with CRIU (through containerd's Tasks.Checkpoint, runc's CRIU options) into a
/// node-local staging directory, and writes beside the images what runtimes need to restore it: spec.dump,
/// config.dump, dump.log, stats-dump and the root file system's changes. Returns with the task still frozen: the
/// caller decides whether it runs again, and resumes it on every failure path.
/// </summary>
internal sealed class CheckpointCapture(ContainerdConnection containerd, TimeProvider time)
{
    private const string PageImagePattern = "pages-*.img";
    private readonly ContainerdTasks _tasks = new(containerd);
    private readonly ContainerdSnapshots _snapshots = new(containerd);

    /// <summary>Freezes the task (cgroup freezer). CRIU keeps a frozen cgroup frozen after the dump.</summary>
    public async Task<TimeSpan> FreezeAsync(SourceContainer source, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        await _tasks.PauseAsync(source.Id, cancellationToken);
        return time.GetElapsedTime(started);
    }

    public async Task<CapturedCheckpoint> DumpAsync(SourceContainer source, string stagingDirectory, CaptureOptions options, TimeSpan freeze, CancellationToken cancellationToken)
    {
        var imageDirectory = Path.Combine(stagingDirectory, CheckpointLayout.CheckpointDirectory);
        var workDirectory = stagingDirectory + ".work";
        Directory.CreateDirectory(imageDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(workDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        // The page images are most of a checkpoint: hashing them on the other core while CRIU writes them takes that
        // pass off the archive write.
        var pages = new GrowingFilesHasher(imageDirectory, PageImagePattern);
        await using var _ = pages;
        try
        {
            var dumpStarted = time.GetTimestamp();
            try
            {
                // Not cancelled mid-way: runc and CRIU would dump on in the shim, and restore the frozen state once done,
                // re-freezing a source resumed meanwhile. The dump is bounded by its own timeout; cancellation is honoured after it.
                await _tasks.CheckpointAsync(source.Id, new TaskCheckpointOptions(
                    imageDirectory, workDirectory, Exit: false, OpenTcp: options.TcpEstablished, FileLocks: options.FileLocks, Timeout: options.Timeout), CancellationToken.None);
                cancellationToken.ThrowIfCancellationRequested();
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.Internal)
            {
                using var excerptTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var excerpt = await CriuLog.ErrorExcerptAsync(Path.Combine(workDirectory, CheckpointLayout.DumpLogFile), excerptTimeout.Token);
                throw new PodMigrateException(ErrorKind.Internal, $"CRIU could not dump container {source.DisplayName}: {e.Message}", e, excerpt);
            }
            var dump = time.GetElapsedTime(dumpStarted);
            var digests = (await pages.CompleteAsync(cancellationToken))
                .ToDictionary(d => $"{CheckpointLayout.CheckpointDirectory}/{d.Key}", d => d.Value, StringComparer.Ordinal);

            var metadataStarted = time.GetTimestamp();
            MoveIfExists(Path.Combine(workDirectory, CheckpointLayout.DumpLogFile), Path.Combine(stagingDirectory, CheckpointLayout.DumpLogFile));
            MoveIfExists(Path.Combine(workDirectory, CheckpointLayout.StatsDumpFile), Path.Combine(stagingDirectory, CheckpointLayout.StatsDumpFile));
            await WriteMetadataAsync(source, stagingDirectory, options, cancellationToken);
            await WriteRootfsDiffAsync(source, stagingDirectory, cancellationToken);
            return new CapturedCheckpoint(stagingDirectory, freeze, dump, time.GetElapsedTime(metadataStarted), digests);
        }
        finally
        {
            Directory.Delete(workDirectory, recursive: true);
        }
    }

    private async Task WriteMetadataAsync(SourceContainer source, string stagingDirectory, CaptureOptions options, CancellationToken cancellationToken)
    {
        await WritePrivateAsync(Path.Combine(stagingDirectory, CheckpointLayout.SpecDumpFile), source.SpecJson.Memory, cancellationToken);
        var config = new ContainerConfigDump
        {
            Id = source.Id,
            Name = source.ContainerName,
            RootfsImage = source.Image,
            RootfsImageName = source.Image,
            // containerd 2.1's CRI restore pulls this reference even when the image is present: it must be pullable.
            RootfsImageRef = options.RootfsImageRef ?? source.Image,
            Runtime = source.Runtime,
            CreatedTime = source.Created,
            CheckpointedTime = time.GetUtcNow(),
        };
        await WritePrivateAsync(Path.Combine(stagingDirectory, CheckpointLayout.ConfigDumpFile), ArchiveJson.SerializeConfigDump(config), cancellationToken);
        if (options.StatusDump is { } status)
        {
            await WritePrivateAsync(Path.Combine(stagingDirectory, CheckpointLayout.StatusDumpFile), status, cancellationToken);
        }
    }

    private async Task WriteRootfsDiffAsync(SourceContainer source, string stagingDirectory, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(source.SnapshotKey))
        {
            return;
        }
        var snapshots = source.Snapshotter == _snapshots.Snapshotter ? _snapshots : new ContainerdSnapshots(containerd, source.Snapshotter);
        var upper = ContainerdSnapshots.UpperDir(await snapshots.MountsAsync(source.SnapshotKey, cancellationToken))
            ?? throw PodMigrateException.FailedPrecondition(
                $"container {source.DisplayName} uses snapshotter {source.Snapshotter}, whose changes PodMigrate cannot read (overlayfs is supported)");
        await using var file = PrivateFile(Path.Combine(stagingDirectory, CheckpointLayout.RootFsDiffTar));
        await OverlayDiffWriter.WriteAsync(upper, file, cancellationToken);
    }

    private static FileStream PrivateFile(string path) => new(path, new FileStreamOptions
    {
        Mode = FileMode.CreateNew,
        Access = FileAccess.Write,
        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        Options = FileOptions.Asynchronous,
    });

    private static async Task WritePrivateAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        await using var file = PrivateFile(path);
        await file.WriteAsync(content, cancellationToken);
    }

    private static void MoveIfExists(string from, string to)
    {
        if (File.Exists(from))
        {
            File.Move(from, to);
        }
    }
}

/// <summary>The capture-relevant options of a checkpoint request.</summary>
internal sealed record CaptureOptions(
    bool TcpEstablished,
    bool FileLocks,
    TimeSpan Timeout,
    string? RootfsImageRef = null,
    byte[]? StatusDump = null);
