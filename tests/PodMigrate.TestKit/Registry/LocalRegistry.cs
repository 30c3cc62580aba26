using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using PodMigrate.Core.Images;

namespace PodMigrate.TestKit.Registry;

/// <summary>
/// A private Docker registry (Debian's docker-registry, distribution 2.8) for one test: plain http on 127.0.0.1 on a
/// free port, storage in its own temp directory. Disposing kills the process by its PID, waits for it, and deletes the
/// directory. When the binary is missing, <see cref="StartAsync"/> fails saying so: nothing is skipped silently.
/// </summary>
public sealed class LocalRegistry : IAsyncDisposable
{
    public const string BinaryPath = "/usr/bin/docker-registry";

    private const int StartAttempts = 3;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _log;

    private LocalRegistry(Process process, StringBuilder log, string directory, int port)
    {
        _process = process;
        _log = log;
        Directory = directory;
        Port = port;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        Client = new RegistryClient(Http);
    }

    /// <summary>The registry's own temp directory (config.yml and storage/).</summary>
    public string Directory { get; }

    public string StorageDirectory => Path.Combine(Directory, "storage");

    public int Port { get; }

    public int ProcessId => _process.Id;

    /// <summary>The registry host as an image name starts with it, e.g. <c>127.0.0.1:41234</c>.</summary>
    public string Host => $"127.0.0.1:{Port}";

    public Uri Endpoint => RegistryClient.EndpointFor(Host);

    /// <summary>An HttpClient for raw requests to the registry; disposed with the fixture.</summary>
    public HttpClient Http { get; }

    public RegistryClient Client { get; }

    /// <summary>What the registry printed so far (stdout and stderr), for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public ImageReference Reference(string repository, string tag = "1") => new(Host, repository, tag);

    public static async Task<LocalRegistry> StartAsync(CancellationToken cancellationToken)
    {
        if (!File.Exists(BinaryPath))
        {
            throw new InvalidOperationException($"{BinaryPath} is missing: install Debian's docker-registry (scripts/setup.sh does)");
        }

        var failures = new List<string>();
        for (var attempt = 1; attempt <= StartAttempts; attempt++)
        {
            var directory = Path.Combine(Path.GetTempPath(), $"pm-registry-{Guid.NewGuid():N}");
            System.IO.Directory.CreateDirectory(Path.Combine(directory, "storage"));
            // The port is free when chosen; another process can take it before the registry binds, hence the retry.
            var port = FreeTcpPort();
            var registry = Launch(directory, port);
            try
            {
                await registry.WaitUntilReadyAsync(cancellationToken);
                return registry;
            }
            catch (InvalidOperationException e)
            {
                failures.Add($"attempt {attempt} on port {port}: {e.Message}");
                await registry.DisposeAsync();
            }
            catch
            {
                await registry.DisposeAsync();
                throw;
            }
        }

        throw new InvalidOperationException($"docker-registry did not start:\n{string.Join('\n', failures)}");
    }

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreeTcpPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(grace.Token);
        }
        finally
        {
            _process.Dispose();
            Http.Dispose();
            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
    }

    private static LocalRegistry Launch(string directory, int port)
    {
        var config = Path.Combine(directory, "config.yml");
        File.WriteAllText(config, $"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {Path.Combine(directory, "storage")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            """);
        var startInfo = new ProcessStartInfo(BinaryPath)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        startInfo.ArgumentList.Add("serve");
        startInfo.ArgumentList.Add(config);
        var log = new StringBuilder();
        var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new LocalRegistry(process, log, directory, port);
    }

    private static void Append(StringBuilder log, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (log)
        {
            log.AppendLine(line);
        }
    }

    /// <summary>Polls GET /v2/ until it answers 200; InvalidOperationException (with the log) if the process exits or it takes too long.</summary>
    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(ReadyTimeout);
        var delay = TimeSpan.FromMilliseconds(20);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"docker-registry exited with code {_process.ExitCode}:\n{Log}");
            }

            try
            {
                using var response = await Http.GetAsync(new Uri(Endpoint, "v2/"), deadline.Token);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new InvalidOperationException($"docker-registry did not answer on {Endpoint} within {ReadyTimeout.TotalSeconds} s:\n{Log}");
            }

            try
            {
                await Task.Delay(delay, deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new InvalidOperationException($"docker-registry did not answer on {Endpoint} within {ReadyTimeout.TotalSeconds} s:\n{Log}");
            }

            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 250));
        }
    }
}
