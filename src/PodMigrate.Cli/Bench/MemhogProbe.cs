using System.Globalization;
using System.Net.Http;
using System.Net.Sockets;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Node.Restore;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// Talks to a memhog workload over HTTP: waits until it has filled and verified its memory once, and reads the
/// FNV-1a 64 digest of that memory, which is computed from the live pages on every request.
/// </summary>
internal sealed class MemhogProbe(HttpClient http, TimeProvider time)
{
    public const int Port = 8080;

    /// <summary>Where memhog is reached inside its own network namespace.</summary>
    public const string Loopback = "127.0.0.1";

    /// <summary>A digest of 2 GiB is computed on request: a request may take a while.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(120);

    /// <summary>
    /// An HTTP client whose connections are made inside the named network namespace (<see cref="NetworkNamespaces"/>):
    /// for a memhog restored as a bare container, which has no address outside it.
    /// </summary>
    public static HttpClient InNetworkNamespace(string networkNamespace) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = await NetworkNamespaces.CreateSocketAsync(networkNamespace, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var connected = false;
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                connected = true;
                return new NetworkStream(socket, ownsSocket: true);
            }
            finally
            {
                if (!connected)
                {
                    socket.Dispose();
                }
            }
        },
    })
    {
        Timeout = RequestTimeout,
    };

    /// <summary>Waits for "ok passes=N" with N &gt;= 1; a "CORRUPT" status or the deadline is an error.</summary>
    public async Task WaitReadyAsync(string ip, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var delay = TimeSpan.FromMilliseconds(50);
        string? last = null;
        try
        {
            while (true)
            {
                try
                {
                    last = await http.GetStringAsync(Url(ip, ""), deadline.Token);
                    if (last.StartsWith("CORRUPT", StringComparison.Ordinal))
                    {
                        throw new PodMigrateException(ErrorKind.DataLoss, $"memhog at {ip} reports its memory corrupt: {last.Trim()}");
                    }
                    if (Passes(last) >= 1)
                    {
                        return;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
                await Task.Delay(delay, time, deadline.Token);
                delay = ExponentialBackoff.Doubled(delay, TimeSpan.FromMilliseconds(500));
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"memhog at {ip} was not ready within {timeout} (last status: {last?.Trim() ?? "no answer"})");
        }
    }

    public async Task<string> DigestAsync(string ip, CancellationToken cancellationToken)
        => (await http.GetStringAsync(Url(ip, "digest"), cancellationToken)).Trim();

    /// <summary>
    /// memhog's GET /heartbeat (or /heartbeat/reset, which clears the longest gap after reading it): the longest
    /// wall-clock gap its 10 ms heartbeat thread saw, and when it began and ended. The pause the workload itself saw.
    /// </summary>
    public async Task<Heartbeat> HeartbeatAsync(string ip, bool reset, CancellationToken cancellationToken)
    {
        var text = (await http.GetStringAsync(Url(ip, reset ? "heartbeat/reset" : "heartbeat"), cancellationToken)).Trim();
        var fields = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var field in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = field.IndexOf('=', StringComparison.Ordinal);
            if (at > 0 && long.TryParse(field.AsSpan(at + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                fields[field[..at]] = value;
            }
        }
        if (!fields.TryGetValue("max_gap_ns", out var gap) || !fields.TryGetValue("beats", out var beats))
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"memhog at {ip} answered /heartbeat with '{text}' (an image without the heartbeat?)");
        }
        return new Heartbeat(beats, TimeSpan.FromTicks(gap / 100),
            DateTimeOffset.UnixEpoch.AddTicks(fields.GetValueOrDefault("gap_start_ns") / 100),
            DateTimeOffset.UnixEpoch.AddTicks(fields.GetValueOrDefault("gap_end_ns") / 100));
    }

    private static Uri Url(string ip, string path) => new(string.Create(CultureInfo.InvariantCulture, $"http://{ip}:{Port}/{path}"));

    private static int Passes(string status)
    {
        // "ok passes=N mib=M seed=S"
        foreach (var field in status.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (field.StartsWith("passes=", StringComparison.Ordinal) && int.TryParse(field.AsSpan("passes=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var passes))
            {
                return passes;
            }
        }
        return 0;
    }
}

/// <summary>What memhog's heartbeat thread saw: beats so far and the longest gap between two of them, with its wall-clock bounds.</summary>
internal sealed record Heartbeat(long Beats, TimeSpan MaxGap, DateTimeOffset GapStart, DateTimeOffset GapEnd);
