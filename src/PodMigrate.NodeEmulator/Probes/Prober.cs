using System.Globalization;
using System.Net;
using System.Net.Sockets;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;

namespace PodMigrate.NodeEmulator.Probes;

/// <summary>One probe's outcome, with what kubelet would log or put into an event on failure.</summary>
internal readonly record struct ProbeResult(bool Success, string Output)
{
    public static ProbeResult Ok { get; } = new(true, "");

    public static ProbeResult Failed(string output) => new(false, output);
}

/// <summary>Where a container's probes go: the pod's IP (the node's for host-network pods), its named ports, its CRI id.</summary>
internal sealed record ProbeTarget(string Host, IList<V1ContainerPort> Ports, string? ContainerId);

/// <summary>
/// Runs single probes the way kubelet's prober does: httpGet (2xx/3xx succeed, redirects are not followed, TLS is not
/// verified), tcpSocket (a connection opens), exec (CRI ExecSync exits 0). gRPC probes are not implemented: they fail.
/// </summary>
internal sealed class Prober : IDisposable
{
    /// <summary>kubelet's prober sends this User-Agent (the version follows <see cref="Nodes.NodeLifecycle.KubeletVersion"/>).</summary>
    private const string UserAgent = "kube-probe/1.34";

    private readonly HttpClient _http;
    private readonly CriConnection _cri;

    public Prober(CriConnection cri)
    {
        _cri = cri;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.Zero,
        };
#pragma warning disable CA5359 // kubelet's HTTPS probes skip certificate verification: pods serve self-signed certificates.
        handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public async Task<ProbeResult> ProbeAsync(V1Probe probe, ProbeTarget target, CancellationToken cancellationToken)
    {
        var timeout = TimeSpan.FromSeconds(Math.Max(1, probe.TimeoutSeconds ?? 1));
        if (probe.HttpGet is { } http)
        {
            return await HttpAsync(http, target, timeout, cancellationToken);
        }
        if (probe.TcpSocket is { } tcp)
        {
            return await TcpAsync(tcp, target, timeout, cancellationToken);
        }
        if (probe.Exec is { } exec)
        {
            return await ExecAsync(exec, target, timeout, cancellationToken);
        }
        return ProbeResult.Failed(probe.Grpc is not null
            ? "grpc probes are not implemented by the node emulator"
            : "the probe has no handler");
    }

    public void Dispose() => _http.Dispose();

    private async Task<ProbeResult> HttpAsync(V1HTTPGetAction action, ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (ResolvePort(action.Port, target) is not { } port)
        {
            return ProbeResult.Failed($"port {action.Port} is not a port of the container");
        }
        var scheme = string.Equals(action.Scheme, "HTTPS", StringComparison.OrdinalIgnoreCase) ? "https" : "http";
        var host = string.IsNullOrEmpty(action.Host) ? target.Host : action.Host;
        var path = string.IsNullOrEmpty(action.Path) ? "/" : action.Path.StartsWith('/') ? action.Path : "/" + action.Path;
        var uri = new Uri(string.Create(CultureInfo.InvariantCulture, $"{scheme}://{HostPart(host)}:{port}{path}"));
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        request.Headers.TryAddWithoutValidation("Accept", "*/*");
        foreach (var header in action.HttpHeaders ?? [])
        {
            request.Headers.Remove(header.Name);
            request.Headers.TryAddWithoutValidation(header.Name, header.Value);
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            var code = (int)response.StatusCode;
            return code is >= 200 and < 400 ? ProbeResult.Ok : ProbeResult.Failed($"HTTP probe failed with statuscode: {code}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ProbeResult.Failed($"Get \"{uri}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
        }
        catch (HttpRequestException e)
        {
            return ProbeResult.Failed($"Get \"{uri}\": {e.Message}");
        }
    }

    private static async Task<ProbeResult> TcpAsync(V1TCPSocketAction action, ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (ResolvePort(action.Port, target) is not { } port)
        {
            return ProbeResult.Failed($"port {action.Port} is not a port of the container");
        }
        var host = string.IsNullOrEmpty(action.Host) ? target.Host : action.Host;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var client = new TcpClient(IPAddress.TryParse(host, out var ip) ? ip.AddressFamily : AddressFamily.InterNetwork);
        try
        {
            await client.ConnectAsync(host, port, deadline.Token);
            return ProbeResult.Ok;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return ProbeResult.Failed($"dial tcp {HostPart(host)}:{port}: i/o timeout");
        }
        catch (SocketException e)
        {
            return ProbeResult.Failed($"dial tcp {HostPart(host)}:{port}: {e.Message}");
        }
    }

    private async Task<ProbeResult> ExecAsync(V1ExecAction action, ProbeTarget target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (target.ContainerId is null)
        {
            return ProbeResult.Failed("exec probe: the container is not running");
        }
        if (action.Command is not { Count: > 0 } command)
        {
            return ProbeResult.Failed("exec probe: no command");
        }
        try
        {
            var result = await _cri.Runtime.ExecSyncAsync(target.ContainerId, command, timeout, cancellationToken);
            return result.ExitCode == 0
                ? ProbeResult.Ok
                : ProbeResult.Failed(string.Create(CultureInfo.InvariantCulture, $"command {string.Join(' ', command)} exited with {result.ExitCode}: {result.Stdout.ToStringUtf8()}{result.Stderr.ToStringUtf8()}"));
        }
        catch (PodMigrateException e)
        {
            return ProbeResult.Failed($"exec probe: {e.Message}");
        }
    }

    private static int? ResolvePort(IntOrString port, ProbeTarget target)
    {
        if (int.TryParse(port?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
        {
            return number is > 0 and <= 65535 ? number : null;
        }
        return target.Ports.FirstOrDefault(p => p.Name == port?.Value)?.ContainerPort;
    }

    private static string HostPart(string host) => host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
}
