using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Restore;
using PodMigrate.NodeEmulator.Kubelet;

namespace PodMigrate.Cli.Bench;

internal sealed record MigrationBenchOptions(
    IReadOnlyList<int> SizesMib,
    IReadOnlyList<string> Codecs,
    IReadOnlyList<RestoreMethod> Methods,
    string From,
    string To,
    string Image,
    SourceDisposition Disposition,
    int Repeat,
    string WorkRoot,
    string RunDirectory,
    string TargetStateDirectory,
    int PrefaultFactor = 4,
    string Pattern = "random",
    IReadOnlyList<string>? RestorePages = null,
    bool AndBack = false);

/// <summary>
/// Runs the memhog workload as a pod on the source node and measures, on that same pod, the raw floor
/// (<see cref="RawFloor"/>) and ours (agent checkpoint to the share, then agent restores of that checkpoint on the
/// target with each method: through CRI as a pod, and direct as a bare container), and checks that every restored
/// copy serves the source's memory digest. Removes every pod, task, checkpoint and file
/// it made, also when a step fails.
/// </summary>
internal sealed class MigrationBench(MigrationBenchOptions options, AgentClient source, AgentClient target, Action<string> log)
{
    public const string PodNamespace = "pm-bench";
    private const string ContainerName = BenchSteps.ContainerName;
    private const string CriNamespace = "k8s.io";
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(90);

    private readonly TimeProvider _time = TimeProvider.System;

    public async Task<IReadOnlyList<MigrationSample>> RunAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = MemhogProbe.RequestTimeout };
        var probe = new MemhogProbe(http, _time);
        var samples = new List<MigrationSample>();
        foreach (var size in options.SizesMib)
        {
            for (var repeat = 1; repeat <= options.Repeat; repeat++)
            {
                log(string.Create(CultureInfo.InvariantCulture, $"== {size} MiB of {options.Pattern} memory, run {repeat}/{options.Repeat}"));
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
        using var containerdB = ContainerdConnection.Open(Socket(options.To), CriNamespace);
        var restoredB = new RestoredContainers(containerdB, options.TargetStateDirectory);
        var runnerA = new KubeletPodRunner(criA, NullLogger<KubeletPodRunner>.Instance);
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

            Prefault(sizeMib);
            var floorDump = await floor.DumpAndCompressAsync(containerId, cancellationToken);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   floor: dump {floorDump.Dump.TotalSeconds:0.000}s, zstd -T0 -1 {floorDump.Compress.TotalSeconds:0.000}s ({floorDump.CompressedBytes >> 20} MiB)"));

            var ours = new List<OursSample>();
            foreach (var codec in options.Codecs)
            {
                ours.Add(await OursAsync(sizeMib, name, codec, digest, probe, criB, restoredB, cancellationToken));
            }

            // The source's task has to be gone for the floor to restore into its container.
            await floor.KillTaskAsync(containerId, cancellationToken);
            Prefault(sizeMib);
            var floorRestore = await floor.DecompressAndRestoreAsync(containerId, cancellationToken);
            var floorDigest = await probe.DigestAsync(ip, cancellationToken);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   floor: zstd -d {floorRestore.Decompress.TotalSeconds:0.000}s, restore {floorRestore.Restore.TotalSeconds:0.000}s, digest {(floorDigest == digest ? "PASS" : "FAIL " + floorDigest)}"));
            return new MigrationSample(sizeMib, repeat, floorDump, floorRestore, floorDigest == digest, ours);
        }
        finally
        {
            await BenchSteps.CleanupFloorAsync(floor, containerId, runnerA, pod, options.From, work, CleanupTimeout, log);
        }
    }

    /// <summary>
    /// Ours with one codec: checkpoint on the source, restore that checkpoint on the target with each method in turn
    /// (each copy checked and removed before the next), then resume the source and delete the checkpoint.
    /// </summary>
    private async Task<OursSample> OursAsync(
        int sizeMib, string podName, string codec, string digest, MemhogProbe probe, CriConnection criB, RestoredContainers restoredB, CancellationToken cancellationToken)
    {
        var selector = new ContainerSelector { Pod = new ContainerSelector.Types.PodContainer { Namespace = PodNamespace, Pod = podName, Container = ContainerName } };
        Prefault(sizeMib);
        var checkpoint = await source.CheckpointToEndAsync(new CheckpointRequest
        {
            Container = selector,
            Disposition = options.Disposition,
            Codec = Commands.CheckpointCommand.ParseCodec(codec),
            Labels = { ["podmigrate.io/bench"] = "migration" },
        }, null, cancellationToken);
        var id = checkpoint.Checkpoint.CheckpointId;
        log(string.Create(CultureInfo.InvariantCulture,
            $"   ours ({codec}): checkpoint {checkpoint.Wall.ToTimeSpan().TotalSeconds:0.000}s (frozen {checkpoint.Frozen.ToTimeSpan().TotalSeconds:0.000}s, {checkpoint.Checkpoint.ArchiveBytes >> 20} MiB)"));
        try
        {
            var restores = new List<RestoreSample>();
            foreach (var method in options.Methods)
            {
                restores.Add(await RestoreAsync(sizeMib, checkpoint, method, podName, digest, probe, criB, restoredB, cancellationToken));
            }
            return new OursSample(
                codec,
                OursSample.PhasesOf(checkpoint.Timings),
                checkpoint.Wall.ToTimeSpan(),
                checkpoint.Frozen.ToTimeSpan(),
                checkpoint.Checkpoint.RawBytes,
                checkpoint.Checkpoint.ArchiveBytes,
                restores);
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            if (checkpoint.SourceState == SourceState.SourceStopped)
            {
                // The next codec (or the floor's restore) needs the source back as it was.
                await CleanupAsync(() => source.ResumeAsync(selector, cleanup.Token), $"source {podName} on {options.From}");
            }
            await CleanupAsync(() => source.DeleteCheckpointAsync(id, force: true, cleanup.Token), $"checkpoint {id}");
        }
    }

    /// <summary>
    /// One restore of the checkpoint on the target: as the pod (cri-image), whose memhog is read at its pod IP, or as a
    /// bare container (direct), which has no address outside its own network namespace, so its memhog is read on that
    /// namespace's loopback. The restored copy (pod or container, and a checkpoint image left on the node) is removed.
    /// </summary>
    private async Task<RestoreSample> RestoreAsync(
        int sizeMib, CheckpointResult checkpoint, RestoreMethod method, string podName, string digest, MemhogProbe probe, CriConnection criB, RestoredContainers restoredB, CancellationToken cancellationToken)
    {
        var name = Commands.RestoreTargetOptions.MethodName(method);
        var request = new RestoreRequest { CheckpointId = checkpoint.Checkpoint.CheckpointId, Method = method };
        var containerId = $"{podName}-{name}";
        if (method == RestoreMethod.RestoreDirect)
        {
            request.ContainerId = containerId;
        }
        else
        {
            request.Pod = new PodTarget { Namespace = PodNamespace, Name = podName, Container = ContainerName };
        }
        RestoreResult? restored = null;
        try
        {
            Prefault(sizeMib);
            var started = Stopwatch.GetTimestamp();
            restored = await target.RestoreToEndAsync(request, null, cancellationToken);
            var downtime = options.Disposition == SourceDisposition.SourceLeaveRunning
                ? checkpoint.Frozen.ToTimeSpan()
                : checkpoint.Frozen.ToTimeSpan() + Stopwatch.GetElapsedTime(started);
            string restoredDigest;
            if (method == RestoreMethod.RestoreDirect)
            {
                using var http = MemhogProbe.InNetworkNamespace(RestoredContainers.NetworkNamespaceName(containerId));
                restoredDigest = await new MemhogProbe(http, _time).DigestAsync(MemhogProbe.Loopback, cancellationToken);
            }
            else
            {
                restoredDigest = await probe.DigestAsync(restored.PodIp, cancellationToken);
            }
            var sample = new RestoreSample(name, OursSample.PhasesOf(restored.Timings), restored.Wall.ToTimeSpan(), downtime, restoredDigest == digest);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   ours ({name}): restore {sample.Total.TotalSeconds:0.000}s, digest {(sample.DigestMatches ? "PASS" : "FAIL " + restoredDigest)}"));
            return sample;
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            if (method == RestoreMethod.RestoreDirect)
            {
                await CleanupAsync(() => restoredB.RemoveAsync(containerId, cleanup.Token), $"container {containerId} on {options.To}");
            }
            else
            {
                var runner = new KubeletPodRunner(criB, NullLogger<KubeletPodRunner>.Instance);
                await CleanupAsync(() => runner.RemoveAsync(PodNamespace, podName, TimeSpan.Zero, cleanup.Token), $"pod {podName} on {options.To}");
            }
            if (restored is { CheckpointImage.Length: > 0 })
            {
                // The agent removes an image it imported for this restore; one that outlives it would be the next one's.
                await CleanupAsync(() => criB.Images.RemoveImageAsync(restored.CheckpointImage, cleanup.Token), $"image {restored.CheckpointImage} on {options.To}");
            }
        }
    }

    private Task CleanupAsync(Func<Task> step, string what) => BenchSteps.CleanupAsync(step, what, log);

    private void Prefault(int sizeMib) => BenchSteps.Prefault(options, sizeMib);

    private string Socket(string node) => BenchSteps.Socket(options, node);

    private V1Pod MemhogPod(int sizeMib) => BenchSteps.MemhogPod(
        options, sizeMib, string.Create(CultureInfo.InvariantCulture, $"memhog-{sizeMib}-{Guid.NewGuid().ToString("N")[..6]}"),
        PodNamespace, "migration", Guid.NewGuid().ToString());
}
