using System.Globalization;
using PodMigrate.Node.Cri;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>Reading the counter of a pod (through CRI ExecSync) or of a bare container (its rootfs upper directory).</summary>
internal static class RestoreAssertions
{
    /// <summary>Polls (with backoff, bounded by the token) until the pod's counter reaches <paramref name="target"/>; returns the value read.</summary>
    /// <param name="floor">Any value read below it fails at once (a restarted counter starts again from 0).</param>
    public static async Task<long> WaitForCountAsync(KubeletPodRunner runner, string podName, long target, CancellationToken cancellationToken, long floor = long.MinValue)
        => await PollAsync(async () =>
        {
            var result = await runner.ExecAsync(TestPods.Namespace, podName, "counter", ["cat", "/tmp/count"], TimeSpan.FromSeconds(10), cancellationToken);
            return result.ExitCode == 0 && long.TryParse(result.Stdout.Trim(), CultureInfo.InvariantCulture, out var value) ? value : null;
        }, target, floor, $"pod {podName}", cancellationToken);

    /// <summary>
    /// The restored pod's counter starts at or above the checkpointed value and goes on without ever dropping below
    /// it (the file could hold the checkpointed value from the rootfs diff even in a restarted container, so it is read
    /// repeatedly), and the process serves it from memory over HTTP at its new IP.
    /// </summary>
    public static async Task ShouldContinuePodCounterAsync(KubeletPodRunner runner, string podName, string podIp, long archivedCount, CancellationToken cancellationToken)
    {
        var first = await WaitForCountAsync(runner, podName, long.MinValue, cancellationToken);
        first.ShouldBeGreaterThanOrEqualTo(archivedCount, $"pod {podName}: the restored counter starts from the checkpointed value, not from 0");
        (await WaitForCountAsync(runner, podName, first + 10, cancellationToken, floor: archivedCount)).ShouldBeGreaterThan(first);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var served = long.Parse((await http.GetStringAsync(new Uri($"http://{podIp}:{TestPods.HttpPort}/"), cancellationToken)).Trim(), CultureInfo.InvariantCulture);
        served.ShouldBeGreaterThan(first, $"pod {podName}: the counter in memory, served at {podIp}, goes on");
    }

    /// <summary>The same for a file on the host (a bare container's /tmp/count in its snapshot's upper directory).</summary>
    public static async Task<long> WaitForCountAsync(string countFile, long target, CancellationToken cancellationToken, long floor = long.MinValue)
        => await PollAsync(() =>
        {
            long? value = null;
            if (File.Exists(countFile) && long.TryParse(File.ReadAllText(countFile).Trim(), CultureInfo.InvariantCulture, out var parsed))
            {
                value = parsed;
            }
            return Task.FromResult(value);
        }, target, floor, countFile, cancellationToken);

    /// <summary>Inverts the byte at <paramref name="offset"/> of a file (an archive damaged on the share).</summary>
    public static void FlipByte(string path, long offset)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        var value = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(value ^ 0xFF));
    }

    private static async Task<long> PollAsync(Func<Task<long?>> read, long target, long floor, string subject, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(50);
        long? last = null;
        while (true)
        {
            last = await read() ?? last;
            if (last < floor)
            {
                throw new InvalidOperationException($"the counter of {subject} went down to {last}, below {floor}: it restarted instead of going on");
            }
            if (last >= target)
            {
                return last.Value;
            }
            try
            {
                await Task.Delay(delay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"the counter of {subject} did not reach {target} (last value read: {last?.ToString(CultureInfo.InvariantCulture) ?? "none"})");
            }
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }
}
