using System.Diagnostics;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Core.Retry;
using PodMigrate.Node.Containerd;
using Runc = Containerd.Runc.V1;

namespace PodMigrate.Cli.Bench;

/// <summary>What the floor's checkpoint side measured: CRIU dump to tmpfs, then tar and zstd -T0 -1 by the CLIs.</summary>
internal sealed record FloorDump(TimeSpan Dump, TimeSpan Tar, TimeSpan Compress, long ImageBytes, long CompressedBytes)
{
    /// <summary>The floor of "checkpoint to published archive": dump + zstd (the tar is left out: a stricter floor).</summary>
    public TimeSpan Total => Dump + Compress;
}

/// <summary>What the floor's restore side measured: zstd -d, tar -x, then a CRIU restore through Tasks.Create + Start.</summary>
internal sealed record FloorRestore(TimeSpan Decompress, TimeSpan Untar, TimeSpan Restore, uint Pid)
{
    /// <summary>The floor of a restore: decompress + CRIU restore (the tar extraction is left out).</summary>
    public TimeSpan Total => Decompress + Restore;
}

/// <summary>
/// The raw floor of a checkpoint and a restore of one container, on the same node and the same workload as ours, with
/// nothing of PodMigrate in between: containerd's Tasks.Checkpoint with runc's image_path on tmpfs (a CRIU dump, the
/// task left running), `zstd -T0 -1` of a tar of the images; then `zstd -d`, and a CRIU restore of those images into
/// the same container (its rootfs snapshot, spec and pod network namespace) through Tasks.Create with runc's
/// criu_image_path + Tasks.Start — what `ctr c restore` does. The container's own task must be gone by then.
/// All files live in <paramref name="workDirectory"/> (a tmpfs), which the caller removes.
/// </summary>
internal sealed class RawFloor(ContainerdConnection containerd, string workDirectory)
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan CriuTimeout = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan CriReapGrace = TimeSpan.FromSeconds(10);

    private readonly ContainerdTasks _tasks = new(containerd);
    private readonly ContainerdContainers _containers = new(containerd);

    private string Images => Path.Combine(workDirectory, "images");

    private string Archive => Path.Combine(workDirectory, "images.tar.zst");

    private string Restored => Path.Combine(workDirectory, "restore-images");

    public async Task<FloorDump> DumpAndCompressAsync(string containerId, CancellationToken cancellationToken)
    {
        var dump = await DumpAsync(containerId, cancellationToken);
        var imageBytes = DirectorySize(Images);

        var tar = Path.Combine(workDirectory, "images.tar");
        var tarTime = await RunAsync("tar", ["-cf", tar, "-C", Images, "."], cancellationToken);
        Directory.Delete(Images, recursive: true);
        var compress = await RunAsync("zstd", ["-T0", "-1", "-q", "-f", tar, "-o", Archive], cancellationToken);
        File.Delete(tar);
        return new FloorDump(dump, tarTime, compress, imageBytes, new FileInfo(Archive).Length);
    }

    /// <summary>
    /// The floor of a migration's pause, dump side: a CRIU dump (Tasks.Checkpoint, image_path on tmpfs, the task
    /// left running), nothing else: no tar, no codec, no share. Returns the dump's time and the image bytes.
    /// </summary>
    public async Task<(TimeSpan Dump, long ImageBytes)> DumpOnlyAsync(string containerId, CancellationToken cancellationToken)
    {
        var dump = await DumpAsync(containerId, cancellationToken);
        return (dump, DirectorySize(Images));
    }

    /// <summary>The CRIU dump both floors time: Tasks.Checkpoint into <see cref="Images"/>, the task left running.</summary>
    private async Task<TimeSpan> DumpAsync(string containerId, CancellationToken cancellationToken)
    {
        var work = Path.Combine(workDirectory, "dump-work");
        Directory.CreateDirectory(Images);
        Directory.CreateDirectory(work);
        var watch = Stopwatch.StartNew();
        await _tasks.CheckpointAsync(containerId, new TaskCheckpointOptions(Images, work, Exit: false, FileLocks: false, Timeout: CriuTimeout), cancellationToken);
        var dump = watch.Elapsed;
        Directory.Delete(work, recursive: true);
        return dump;
    }

    /// <summary>The floor's restore side: CRIU restore of <see cref="DumpOnlyAsync"/>'s images from tmpfs into the container, whose task must be gone.</summary>
    public Task<(TimeSpan Restore, uint Pid)> RestoreOnlyAsync(string containerId, CancellationToken cancellationToken)
        => RestoreFromAsync(containerId, Images, cancellationToken);

    /// <summary>Decompresses the floor's archive and restores it into <paramref name="containerId"/>, whose task must be gone.</summary>
    public async Task<FloorRestore> DecompressAndRestoreAsync(string containerId, CancellationToken cancellationToken)
    {
        var tar = Path.Combine(workDirectory, "restore.tar");
        var decompress = await RunAsync("zstd", ["-d", "-q", "-f", Archive, "-o", tar], cancellationToken);
        File.Delete(Archive);
        Directory.CreateDirectory(Restored);
        var untar = await RunAsync("tar", ["-xf", tar, "-C", Restored], cancellationToken);
        File.Delete(tar);

        var (restore, pid) = await RestoreFromAsync(containerId, Restored, cancellationToken);
        return new FloorRestore(decompress, untar, restore, pid);
    }

    private async Task<(TimeSpan Restore, uint Pid)> RestoreFromAsync(string containerId, string images, CancellationToken cancellationToken)
    {
        var container = await _containers.GetAsync(containerId, cancellationToken);
        var mounts = await new ContainerdSnapshots(containerd, container.Snapshotter).MountsAsync(container.SnapshotKey, cancellationToken);
        var runtimeOptions = container.Runtime?.Options is { } any && any.TypeUrl.EndsWith(Runc.Options.Descriptor.FullName, StringComparison.Ordinal)
            ? Runc.Options.Parser.ParseFrom(any.Value)
            : null;
        var work = Path.Combine(workDirectory, "restore-work");
        Directory.CreateDirectory(work);
        var io = TaskIo.ToFile(Path.Combine(workDirectory, "restored.log"));
        var watch = Stopwatch.StartNew();
        var pid = await _tasks.RestoreAsync(containerId, mounts, io, new TaskRestoreOptions(images, work, runtimeOptions, CriuTimeout), cancellationToken);
        return (watch.Elapsed, pid);
    }

    /// <summary>
    /// Waits until the container has no task. CRI reaps the tasks of its containers as they exit and only then marks
    /// the container exited: deleting the task first makes CRI retry its exit handling for seconds, during which it
    /// refuses to remove the container ("still running"). So a stopped task is left to CRI for a while, and deleted
    /// here only if CRI does not.
    /// </summary>
    public async Task WaitNoTaskAsync(string containerId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var delay = TimeSpan.FromMilliseconds(20);
        var started = Stopwatch.GetTimestamp();
        try
        {
            while (true)
            {
                try
                {
                    var status = (await _tasks.GetAsync(containerId, deadline.Token)).State;
                    if (status is TaskState.Stopped or TaskState.Created && Stopwatch.GetElapsedTime(started) > CriReapGrace)
                    {
                        await _tasks.DeleteAsync(containerId, deadline.Token);
                        return;
                    }
                }
                catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
                {
                    return;
                }
                await Task.Delay(delay, deadline.Token);
                delay = ExponentialBackoff.Doubled(delay, TimeSpan.FromMilliseconds(500));
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"the task of container {containerId} was still there after {timeout}");
        }
    }

    /// <summary>Kills the container's task (the floor's restored process) and waits until it is gone.</summary>
    public async Task KillTaskAsync(string containerId, CancellationToken cancellationToken)
    {
        try
        {
            var status = (await _tasks.GetAsync(containerId, cancellationToken)).State;
            if (status == TaskState.Paused)
            {
                await _tasks.ResumeAsync(containerId, cancellationToken);
            }
            if (status is not (TaskState.Stopped or TaskState.Created))
            {
                await _tasks.KillAsync(containerId, signal: 9, all: true, cancellationToken);
            }
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return;
        }
        await WaitNoTaskAsync(containerId, TimeSpan.FromSeconds(30), cancellationToken);
    }

    private static async Task<TimeSpan> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var result = await ProcessRunner.RunCheckedAsync(new ProcessSpec(tool, arguments) { Timeout = ToolTimeout }, cancellationToken);
        return result.Elapsed;
    }

    private static long DirectorySize(string directory)
        => new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
}
