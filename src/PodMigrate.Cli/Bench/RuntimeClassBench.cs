using System.Diagnostics;
using System.Globalization;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Migrations;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// The real path (issue 9, items 7 and 8), measured end to end: a memhog pod created through the API server on the
/// source node, moved by a PodMigration that the controller drives (checkpoint left stopped, archive published on the
/// share, PrepareRestore on the target, the clone pod under the podmigrate RuntimeClass restored by the node's runtime),
/// against the raw floor of the same kind of process on the same node in the same run: CRIU dump to tmpfs + CRIU restore
/// from tmpfs, no codec, no share (<see cref="RawFloor.DumpOnlyAsync"/>). Reports every phase the controller and the
/// agents record, the controller's downtime, the pause memhog's heartbeat thread saw, their agreement, and the ratio of
/// that pause to the floor; checks the restored memory's digest. Removes its pods and migrations, also on failure.
/// </summary>
internal sealed class RuntimeClassBench(MigrationBenchOptions options, IKubernetesApi api, Action<string> log)
{
    public const string Method = "runtimeclass";
    private const string Namespace = "default";
    private const string CriNamespace = "k8s.io";
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan StatusPoll = TimeSpan.FromMilliseconds(200);

    /// <summary>The verification window of the bench's migrations: after the downtime, so only the run's length depends on it.</summary>
    private const string VerifyWindow = "2s";

    public async Task<IReadOnlyList<RuntimeClassSample>> RunAsync(CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = MemhogProbe.RequestTimeout };
        var probe = new MemhogProbe(http, TimeProvider.System);
        var samples = new List<RuntimeClassSample>();
        foreach (var size in options.SizesMib)
        {
            foreach (var codec in options.Codecs)
            {
                for (var repeat = 1; repeat <= options.Repeat; repeat++)
                {
                    // Every kind of restore side by side with a floor of its own run (the machine's load drifts).
                    foreach (var pages in options.RestorePages ?? [MigrationRestorePages.Lazy])
                    {
                        log(string.Create(CultureInfo.InvariantCulture, $"== {Method}: {size} MiB of {options.Pattern} memory, codec {codec}, pages {pages}, run {repeat}/{options.Repeat}"));
                        var floor = await FloorAsync(size, probe, cancellationToken);
                        samples.AddRange(await OursAsync(size, repeat, codec, pages, floor, probe, cancellationToken));
                    }
                }
            }
        }
        return samples;
    }

    /// <summary>The floor: a memhog pod started straight through the source node's CRI, dumped to tmpfs and restored from it.</summary>
    private async Task<FloorSample> FloorAsync(int sizeMib, MemhogProbe probe, CancellationToken cancellationToken)
    {
        using var cri = CriConnection.ForUnixSocket(Socket(options.From));
        using var containerd = ContainerdConnection.Open(Socket(options.From), CriNamespace);
        var runner = new KubeletPodRunner(cri, NullLogger<KubeletPodRunner>.Instance);
        var pod = MemhogPod(sizeMib, "floor", nodeName: null);
        pod.Metadata.NamespaceProperty = MigrationBench.PodNamespace;
        var work = Path.Combine(options.WorkRoot, $"podmigrate-bench-{Guid.NewGuid():N}");
        DurableFileSystem.CreatePrivateDirectory(work);
        var floor = new RawFloor(containerd, work);
        string? containerId = null;
        try
        {
            var started = await runner.RunAsync(pod, cancellationToken);
            containerId = started.Containers.Single().Id;
            var ip = started.Ip ?? throw PodMigrateException.FailedPrecondition($"pod {started.Key} on {options.From} has no IP");
            await probe.WaitReadyAsync(ip, TimeSpan.FromSeconds(60 + sizeMib / 16), cancellationToken);
            var digest = await probe.DigestAsync(ip, cancellationToken);
            Prefault(sizeMib);
            var (dump, imageBytes) = await floor.DumpOnlyAsync(containerId, cancellationToken);
            await floor.KillTaskAsync(containerId, cancellationToken);
            Prefault(sizeMib);
            var (restore, _) = await floor.RestoreOnlyAsync(containerId, cancellationToken);
            var restoredDigest = await probe.DigestAsync(ip, cancellationToken);
            log(string.Create(CultureInfo.InvariantCulture,
                $"   floor: criu dump to tmpfs {dump.TotalSeconds:0.000}s ({imageBytes >> 20} MiB), criu restore from tmpfs {restore.TotalSeconds:0.000}s, digest {(restoredDigest == digest ? "PASS" : "FAIL " + restoredDigest)}"));
            return new FloorSample(dump, restore, imageBytes, restoredDigest == digest);
        }
        finally
        {
            await BenchSteps.CleanupFloorAsync(floor, containerId, runner, pod, options.From, work, CleanupTimeout, log);
        }
    }

    /// <summary>Ours: the PodMigration through the controller, timed by the controller, the agents and the workload.</summary>
    private async Task<List<RuntimeClassSample>> OursAsync(int sizeMib, int repeat, string codec, string pages, FloorSample floor, MemhogProbe probe, CancellationToken cancellationToken)
    {
        var pod = MemhogPod(sizeMib, "rc", options.From);
        var name = pod.Metadata.Name!;
        var migrationName = name + "-move";
        var backName = name + "-back";
        string? clonePod = null, backPod = null;
        var samples = new List<RuntimeClassSample>();
        try
        {
            await api.CreateAsync(KubeResources.V1Pods, Namespace, pod, cancellationToken);
            var ip = await WaitPodReadyAsync(name, TimeSpan.FromSeconds(90 + sizeMib / 16), cancellationToken);
            await probe.WaitReadyAsync(ip, TimeSpan.FromSeconds(60 + sizeMib / 16), cancellationToken);
            var digest = await probe.DigestAsync(ip, cancellationToken);
            log($"   ours: pod {Namespace}/{name} on {options.From} at {ip}, digest {digest}");
            Prefault(sizeMib);
            // From here on the longest gap is the migration's (the fill, the digest and the prefault are behind it).
            await probe.HeartbeatAsync(ip, reset: true, cancellationToken);

            var started = Stopwatch.GetTimestamp();
            await api.CreateAsync(PodMigration.Resource, Namespace, new PodMigration
            {
                Metadata = new k8s.Models.V1ObjectMeta { Name = migrationName, NamespaceProperty = Namespace, Labels = new Dictionary<string, string> { ["podmigrate.io/bench"] = Method } },
                Spec = new PodMigrationSpec { PodName = name, TargetNode = options.To, Codec = codec, VerifyWindow = VerifyWindow, RestorePages = pages },
            }, cancellationToken);
            var done = await WaitTerminalAsync(migrationName, TimeSpan.FromMinutes(10), cancellationToken);
            var wall = Stopwatch.GetElapsedTime(started);
            var status = done.Status!;
            clonePod = status.ClonePod;
            if (status.Phase != MigrationPhase.Succeeded)
            {
                throw new PodMigrateException(ErrorKind.Aborted, $"migration {Namespace}/{migrationName} ended {status.Phase}: {status.Message}");
            }
            var cloneIp = await WaitPodReadyAsync(clonePod!, TimeSpan.FromSeconds(60), cancellationToken);
            var seen = await probe.HeartbeatAsync(cloneIp, reset: false, cancellationToken);
            var restoredDigest = await probe.DigestAsync(cloneIp, cancellationToken);
            var sample = RuntimeClassSample.From(sizeMib, repeat, codec, floor, status, seen, wall, restoredDigest == digest) with { Pages = pages, Move = $"{options.From}→{options.To}" };
            log(string.Create(CultureInfo.InvariantCulture,
                $"   ours: downtime reported {sample.Reported?.TotalSeconds:0.000}s, workload-seen pause {seen.MaxGap.TotalSeconds:0.000}s, floor {floor.Total.TotalSeconds:0.000}s, ratio {sample.Ratio:0.00}, digest {(sample.DigestMatches ? "PASS" : "FAIL " + restoredDigest)}"));
            samples.Add(sample);
            if (!options.AndBack)
            {
                return samples;
            }

            // And back: the clone (now the workload) moves to where it came from, the same way.
            Prefault(sizeMib);
            await probe.HeartbeatAsync(cloneIp, reset: true, cancellationToken);
            started = Stopwatch.GetTimestamp();
            await api.CreateAsync(PodMigration.Resource, Namespace, new PodMigration
            {
                Metadata = new k8s.Models.V1ObjectMeta { Name = backName, NamespaceProperty = Namespace, Labels = new Dictionary<string, string> { ["podmigrate.io/bench"] = Method } },
                Spec = new PodMigrationSpec { PodName = clonePod!, TargetNode = options.From, Codec = codec, VerifyWindow = VerifyWindow, RestorePages = pages },
            }, cancellationToken);
            var back = (await WaitTerminalAsync(backName, TimeSpan.FromMinutes(10), cancellationToken)).Status!;
            wall = Stopwatch.GetElapsedTime(started);
            backPod = back.ClonePod;
            if (back.Phase != MigrationPhase.Succeeded)
            {
                throw new PodMigrateException(ErrorKind.Aborted, $"migration {Namespace}/{backName} ended {back.Phase}: {back.Message}");
            }
            var backIp = await WaitPodReadyAsync(backPod!, TimeSpan.FromSeconds(60), cancellationToken);
            var backSeen = await probe.HeartbeatAsync(backIp, reset: false, cancellationToken);
            var backDigest = await probe.DigestAsync(backIp, cancellationToken);
            var backSample = RuntimeClassSample.From(sizeMib, repeat, codec, floor, back, backSeen, wall, backDigest == digest) with { Pages = pages, Move = $"{options.To}→{options.From}" };
            log(string.Create(CultureInfo.InvariantCulture,
                $"   back: downtime reported {backSample.Reported?.TotalSeconds:0.000}s, workload-seen pause {backSeen.MaxGap.TotalSeconds:0.000}s, ratio {backSample.Ratio:0.00}, digest {(backSample.DigestMatches ? "PASS" : "FAIL " + backDigest)}"));
            samples.Add(backSample);
            return samples;
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(CleanupTimeout);
            await CleanupAsync(() => DeleteAsync(PodMigration.Resource, migrationName, cleanup.Token), $"podmigration {migrationName}");
            await CleanupAsync(() => DeleteAsync(PodMigration.Resource, backName, cleanup.Token), $"podmigration {backName}");
            foreach (var podName in new[] { backPod, clonePod, name })
            {
                if (podName is not null)
                {
                    await CleanupAsync(() => DeletePodAndWaitAsync(podName, cleanup.Token), $"pod {podName}");
                }
            }
        }
    }

    private async Task<string> WaitPodReadyAsync(string podName, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        V1Pod? last = null;
        try
        {
            while (true)
            {
                last = await api.GetAsync(KubeResources.V1Pods, Namespace, podName, deadline.Token);
                if (last.Status is { PodIP: { Length: > 0 } ip } podStatus
                    && podStatus.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true)
                {
                    return ip;
                }
                await Task.Delay(StatusPoll, TimeProvider.System, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"pod {Namespace}/{podName} was not Ready within {timeout} (phase {last?.Status?.Phase ?? "?"}: {last?.Status?.Message})");
        }
    }

    private async Task<PodMigration> WaitTerminalAsync(string migrationName, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        string? phase = null;
        try
        {
            while (true)
            {
                var migration = await api.GetAsync(PodMigration.Resource, Namespace, migrationName, deadline.Token);
                if (migration.Status?.Phase != phase)
                {
                    phase = migration.Status?.Phase;
                    log($"   ours: {migrationName} {phase}: {migration.Status?.Message}");
                }
                if (MigrationPhase.IsTerminal(phase))
                {
                    return migration;
                }
                await Task.Delay(StatusPoll, TimeProvider.System, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"podmigration {Namespace}/{migrationName} did not end within {timeout} (last phase {phase})");
        }
    }

    private async Task DeleteAsync<T>(ResourceKind<T> kind, string name, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            await api.DeleteAsync(kind, Namespace, name, null, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }

    /// <summary>Deletes the pod and waits until the API server no longer has it: the node emulator removed it from its node.</summary>
    private async Task DeletePodAndWaitAsync(string podName, CancellationToken cancellationToken)
    {
        await DeleteAsync(KubeResources.V1Pods, podName, cancellationToken);
        while (true)
        {
            try
            {
                await api.GetAsync(KubeResources.V1Pods, Namespace, podName, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                return;
            }
            await Task.Delay(StatusPoll, TimeProvider.System, cancellationToken);
        }
    }

    private Task CleanupAsync(Func<Task> step, string what) => BenchSteps.CleanupAsync(step, what, log);

    private void Prefault(int sizeMib) => BenchSteps.Prefault(options, sizeMib);

    private string Socket(string node) => BenchSteps.Socket(options, node);

    private V1Pod MemhogPod(int sizeMib, string kind, string? nodeName) => BenchSteps.MemhogPod(
        options, sizeMib, string.Create(CultureInfo.InvariantCulture, $"memhog-{kind}-{sizeMib}-{Guid.NewGuid().ToString("N")[..6]}"),
        Namespace, Method, nodeName is null ? Guid.NewGuid().ToString() : null, nodeName,
        new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = "http" }, PeriodSeconds = 1 });
}

/// <summary>The issue's floor of one run: CRIU dump to tmpfs + CRIU restore from tmpfs of a memhog of the same size.</summary>
internal sealed record FloorSample(TimeSpan Dump, TimeSpan Restore, long ImageBytes, bool DigestMatches)
{
    public TimeSpan Total => Dump + Restore;
}

/// <summary>
/// One PodMigration through the RuntimeClass: the controller's timings (status.timings: the agents' phases under
/// checkpoint.* and prepare.*), the critical path between the status's instants, the reported downtime, the pause the
/// workload saw, and the floor measured beside it.
/// </summary>
internal sealed record RuntimeClassSample(
    int SizeMib,
    int Repeat,
    string Codec,
    FloorSample Floor,
    IReadOnlyDictionary<string, TimeSpan> Timings,
    IReadOnlyDictionary<string, TimeSpan> CriticalPath,
    TimeSpan? Reported,
    TimeSpan Seen,
    TimeSpan Wall,
    bool DigestMatches)
{
    /// <summary>spec.restorePages of the migration.</summary>
    public string Pages { get; init; } = MigrationRestorePages.Lazy;

    /// <summary>source→target.</summary>
    public string Move { get; init; } = "";

    /// <summary>The workload-seen pause over the floor: the issue's goal is at most 1.3 at 1 GiB.</summary>
    public double Ratio => Seen / Floor.Total;

    /// <summary>Item 7: the reported downtime within 10 % or 100 ms of the workload-seen pause.</summary>
    public bool Honest => Reported is { } reported
        && (reported - Seen).Duration() <= TimeSpan.FromTicks(Math.Max(Seen.Ticks / 10, TimeSpan.FromMilliseconds(100).Ticks));

    /// <summary>The steps of the pause, in order, from the status's instants (each from the previous one).</summary>
    /// <summary>
    /// The steps of the pause, in order, from the status's instants (each from the previous one). "checkpointed" is when
    /// the controller went on: the checkpoint sealed (and the target's follower done) or published.
    /// </summary>
    public static readonly string[] CriticalPathSteps = ["stop→checkpointed", "checkpointed→prepared", "prepared→clone", "clone→running"];

    /// <summary>From the stop to the archive durable on the share as the controller saw it (off the pause when sealed early).</summary>
    public TimeSpan? Durable { get; init; }

    public static RuntimeClassSample From(int sizeMib, int repeat, string codec, FloorSample floor, PodMigrationStatus status, Heartbeat seen, TimeSpan wall, bool digestMatches)
    {
        var timings = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        foreach (var (name, text) in status.Timings ?? [])
        {
            if (KubeDuration.TryParse(text, out var value))
            {
                timings[name] = value;
            }
        }
        var checkpointed = status.Conditions?.Find(c => c.Type == "Checkpointed")?.LastTransitionTime;
        var stopped = status.SourceStoppedAt ?? status.FrozenAt;
        var instants = new DateTimeOffset?[] { stopped, checkpointed, status.PreparedAt, status.CloneCreatedAt, status.RestoredAt };
        var path = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        for (var i = 0; i < CriticalPathSteps.Length; i++)
        {
            if (instants[i] is { } from && instants[i + 1] is { } to)
            {
                path[CriticalPathSteps[i]] = to - from;
            }
        }
        TimeSpan? reported = status.Downtime is { } d && KubeDuration.TryParse(d, out var downtime) ? downtime : null;
        return new RuntimeClassSample(sizeMib, repeat, codec, floor, timings, path, reported, seen.MaxGap, wall, digestMatches)
        {
            Durable = status.PublishedAt - stopped,
        };
    }
}
