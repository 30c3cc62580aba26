using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Kube.Models;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using KubeContainer = PodMigrate.Kube.Models.Container;

namespace PodMigrate.Cli.Bench;

internal sealed record MigrationBenchOptions(
    IReadOnlyList<int> SizesMib,
    IReadOnlyList<string> Codecs,
    string From,
    string To,
    string Image,
    SourceDisposition Disposition,
    int Repeat,
    string WorkRoot,
    string RunDirectory);

/// <summary>
/// Runs the memhog workload as a pod on the source node and measures, on that same pod, the raw floor
/// (<see cref="RawFloor"/>) and ours (agent checkpoint to the share, agent restore on the target through CRI), and
/// checks that both restored copies serve the source's memory digest. Removes every pod, task, checkpoint and file
/// it made, also when a step fails.
/// </summary>
internal sealed class MigrationBench(MigrationBenchOptions options, AgentClient source, AgentClient target, Action<string> log)
{
    public const string PodNamespace = "pm-bench";
    private const string ContainerName = "memhog";
    private const string CriNamespace = "k8s.io";
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(90);

    private readonly TimeProvider _time = TimeProvider.System;

    public async Task<IReadOnlyList<MigrationSample>> RunAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(120) };
        var probe = new MemhogProbe(http, _time);
        var samples = new List<MigrationSample>();
        foreach (var size in options.SizesMib)
        {
            for (var repeat = 1; repeat <= options.Repeat; repeat++)
            {
                log(string.Create(CultureInfo.InvariantCulture, $"== {size} MiB, run {repeat}/{options.Repeat}"));
                samples.Add(await RunOnceAsync(size, repeat, probe, cancellationToken));
            }
        }
        return samples;
    }

    private async Task<MigrationSample> RunOnceAsync(int sizeMib, int repeat, MemhogProbe probe, CancellationToken cancellationToken)
    {
        using var criA = CriConnection.ForUnixSocket(Socket(options.From));
        using var criB = CriConnection.ForUnixSocket(Socket(options.To));
        using var containerd = ContainerdConnection.Open(Socket(options.From), CriNamespace);
        var runnerA = new KubeletPodRunner(criA, NullLogger<KubeletPodRunner>.Instance);
        var runnerB = new KubeletPodRunner(criB, NullLogger<KubeletPodRunner>.Instance);
        var pod = MemhogPod(sizeMib);
        var name = pod.Metadata.Name!;
        var work = Path.Combine(options.WorkRoot, $"podmigrate-bench-{Guid.NewGuid():N}");
        DurableFileSystem.CreatePrivateDirectory(work);
        var floor = new RawFloor(containerd, work);
        string? containerId = null;
        try
        {
            var started = await runnerA.RunAsync(pod, cancellationToken);
            containerId = started.Containers.Single().Id;
            var ip = started.Ip ?? throw PodMigrateException.FailedPrecondition($"pod {started.Key} on {options.From} has no IP");
            await probe.WaitReadyAsync(ip, TimeSpan.FromSeconds(60 + sizeMib / 16), cancellationToken);
            var digest = await probe.DigestAsync(ip, cancellationToken);
            log($"   pod {started.Key} on {options.From} at {ip}, container {containerId[..12]}, digest {digest}");

            var floorDump = await floor.DumpAndCompressAsync(containerId, cancellationToken);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   floor: dump {floorDump.Dump.TotalSeconds:0.000}s, zstd -T0 -1 {floorDump.Compress.TotalSeconds:0.000}s ({floorDump.CompressedBytes >> 20} MiB)"));

            var ours = new List<OursSample>();
            foreach (var codec in options.Codecs)
            {
                ours.Add(await OursAsync(name, codec, digest, probe, runnerB, cancellationToken));
            }

            // The source's task has to be gone for the floor to restore into its container.
            await floor.KillTaskAsync(containerId, cancellationToken);
            var floorRestore = await floor.DecompressAndRestoreAsync(containerId, cancellationToken);
            var floorDigest = await probe.DigestAsync(ip, cancellationToken);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   floor: zstd -d {floorRestore.Decompress.TotalSeconds:0.000}s, restore {floorRestore.Restore.TotalSeconds:0.000}s, digest {(floorDigest == digest ? "PASS" : "FAIL " + floorDigest)}"));
            return new MigrationSample(sizeMib, repeat, floorDump, floorRestore, floorDigest == digest, ours);
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await CleanupAsync(() => containerId is null ? Task.CompletedTask : floor.KillTaskAsync(containerId, cleanup.Token), $"task of {containerId}");
            await CleanupAsync(() => runnerA.RemoveAsync(PodNamespace, name, TimeSpan.Zero, cleanup.Token), $"pod {name} on {options.From}");
            await CleanupAsync(() => runnerB.RemoveAsync(PodNamespace, name, TimeSpan.Zero, cleanup.Token), $"pod {name} on {options.To}");
            await CleanupAsync(() =>
            {
                Directory.Delete(work, recursive: true);
                return Task.CompletedTask;
            }, work);
        }
    }

    /// <summary>Ours with one codec: checkpoint on the source, restore on the target, digest, then undo both.</summary>
    private async Task<OursSample> OursAsync(string podName, string codec, string digest, MemhogProbe probe, KubeletPodRunner runnerB, CancellationToken cancellationToken)
    {
        var selector = new ContainerSelector { Pod = new ContainerSelector.Types.PodContainer { Namespace = PodNamespace, Pod = podName, Container = ContainerName } };
        var checkpoint = await source.CheckpointToEndAsync(new CheckpointRequest
        {
            Container = selector,
            Disposition = options.Disposition,
            Codec = Commands.CheckpointCommand.ParseCodec(codec),
            Labels = { ["podmigrate.io/bench"] = "migration" },
        }, null, cancellationToken);
        var checkpointed = Stopwatch.GetTimestamp();
        var id = checkpoint.Checkpoint.CheckpointId;
        try
        {
            var restored = await target.RestoreToEndAsync(new RestoreRequest
            {
                CheckpointId = id,
                Method = RestoreMethod.RestoreCriImage,
                Pod = new PodTarget { Namespace = PodNamespace, Name = podName, Container = ContainerName },
            }, null, cancellationToken);
            var downtime = options.Disposition == SourceDisposition.SourceLeaveRunning
                ? checkpoint.Frozen.ToTimeSpan()
                : checkpoint.Frozen.ToTimeSpan() + Stopwatch.GetElapsedTime(checkpointed);
            var restoredDigest = await probe.DigestAsync(restored.PodIp, cancellationToken);
            var sample = new OursSample(
                codec,
                OursSample.PhasesOf(checkpoint.Timings),
                checkpoint.Wall.ToTimeSpan(),
                checkpoint.Frozen.ToTimeSpan(),
                downtime,
                checkpoint.Checkpoint.RawBytes,
                checkpoint.Checkpoint.ArchiveBytes,
                OursSample.PhasesOf(restored.Timings),
                restored.Wall.ToTimeSpan(),
                restoredDigest == digest);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   ours ({codec}): checkpoint {sample.CheckpointTotal.TotalSeconds:0.000}s (frozen {sample.Frozen.TotalSeconds:0.000}s, {sample.ArchiveBytes >> 20} MiB), restore {sample.RestoreTotal.TotalSeconds:0.000}s, digest {(sample.DigestMatches ? "PASS" : "FAIL " + restoredDigest)}"));
            return sample;
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await CleanupAsync(() => runnerB.RemoveAsync(PodNamespace, podName, TimeSpan.Zero, cleanup.Token), $"pod {podName} on {options.To}");
            if (checkpoint.SourceState == SourceState.SourceStopped)
            {
                // The next codec (or the floor's restore) needs the source back as it was.
                await CleanupAsync(() => source.ResumeAsync(selector, cleanup.Token), $"source {podName} on {options.From}");
            }
            await CleanupAsync(() => source.DeleteCheckpointAsync(id, force: true, cleanup.Token), $"checkpoint {id}");
        }
    }

    private async Task CleanupAsync(Func<Task> step, string what)
    {
        try
        {
            await step();
        }
        catch (Exception e) when (e is PodMigrateException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            log($"   cleanup of {what} failed: {e.Message}");
        }
    }

    private string Socket(string node) => Path.Combine(options.RunDirectory, node, "containerd.sock");

    private Pod MemhogPod(int sizeMib) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = string.Create(CultureInfo.InvariantCulture, $"memhog-{sizeMib}-{Guid.NewGuid().ToString("N")[..6]}"),
            Namespace = PodNamespace,
            Uid = Guid.NewGuid().ToString(),
            Labels = new() { ["app"] = "memhog", ["podmigrate.io/bench"] = "migration" },
        },
        Spec = new PodSpec
        {
            TerminationGracePeriodSeconds = 1,
            Containers =
            [
                new KubeContainer
                {
                    Name = ContainerName,
                    Image = options.Image,
                    Env =
                    [
                        new EnvVar { Name = "MEMHOG_MIB", Value = sizeMib.ToString(CultureInfo.InvariantCulture) },
                        new EnvVar { Name = "MEMHOG_SEED", Value = "1" },
                        new EnvVar { Name = "PORT", Value = MemhogProbe.Port.ToString(CultureInfo.InvariantCulture) },
                    ],
                    Ports = [new ContainerPort { Name = "http", Port = MemhogProbe.Port, Protocol = "TCP" }],
                },
            ],
        },
    };
}
