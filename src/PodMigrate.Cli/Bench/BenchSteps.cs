using System.Globalization;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;
using KubeContainer = k8s.Models.V1Container;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// What the two benches (<see cref="MigrationBench"/>, <see cref="RuntimeClassBench"/>) do alike: the memhog pod they
/// run, a node's containerd socket, the prefault before a measured step, and cleanup steps that log instead of throw.
/// </summary>
internal static class BenchSteps
{
    public const string ContainerName = "memhog";

    public static string Socket(MigrationBenchOptions options, string node) => Path.Combine(options.RunDirectory, node, "containerd.sock");

    public static void Prefault(MigrationBenchOptions options, int sizeMib)
    {
        if (options.PrefaultFactor > 0)
        {
            MemoryPrefault.Touch((long)sizeMib * options.PrefaultFactor << 20);
        }
    }

    /// <summary>Runs one cleanup step; a failure is logged, so the steps after it still run.</summary>
    public static async Task CleanupAsync(Func<Task> step, string what, Action<string> log)
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

    /// <summary>
    /// The floor's cleanup, in order: the task <see cref="RawFloor"/> may have restored, the pod the runner started, the
    /// work directory.
    /// </summary>
    public static async Task CleanupFloorAsync(
        RawFloor floor, string? containerId, KubeletPodRunner runner, V1Pod pod, string node, string work, TimeSpan timeout, Action<string> log)
    {
        using var cleanup = new CancellationTokenSource(timeout);
        await CleanupAsync(() => containerId is null ? Task.CompletedTask : floor.KillTaskAsync(containerId, cleanup.Token), $"task of {containerId}", log);
        await CleanupAsync(() => runner.RemoveAsync(pod.Metadata.NamespaceProperty!, pod.Metadata.Name!, TimeSpan.Zero, cleanup.Token), $"pod {pod.Metadata.Name} on {node}", log);
        await CleanupAsync(() =>
        {
            Directory.Delete(work, recursive: true);
            return Task.CompletedTask;
        }, work, log);
    }

    /// <summary>
    /// The memhog pod: <paramref name="sizeMib"/> MiB of <see cref="MigrationBenchOptions.Pattern"/> memory served on
    /// <see cref="MemhogProbe.Port"/>, labelled with the bench that made it.
    /// </summary>
    public static V1Pod MemhogPod(
        MigrationBenchOptions options, int sizeMib, string name, string podNamespace, string bench, string? uid, string? nodeName = null, V1Probe? readinessProbe = null) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = podNamespace,
            Uid = uid,
            Labels = new Dictionary<string, string>() { ["app"] = "memhog", ["podmigrate.io/bench"] = bench },
        },
        Spec = new V1PodSpec
        {
            NodeName = nodeName,
            TerminationGracePeriodSeconds = 1,
            Containers =
            [
                new KubeContainer
                {
                    Name = ContainerName,
                    Image = options.Image,
                    Env =
                    [
                        new V1EnvVar { Name = "MEMHOG_MIB", Value = sizeMib.ToString(CultureInfo.InvariantCulture) },
                        new V1EnvVar { Name = "MEMHOG_SEED", Value = "1" },
                        new V1EnvVar { Name = "MEMHOG_PATTERN", Value = options.Pattern },
                        new V1EnvVar { Name = "PORT", Value = MemhogProbe.Port.ToString(CultureInfo.InvariantCulture) },
                    ],
                    Ports = [new V1ContainerPort { Name = "http", ContainerPort = MemhogProbe.Port, Protocol = "TCP" }],
                    ReadinessProbe = readinessProbe,
                },
            ],
        },
    };
}
