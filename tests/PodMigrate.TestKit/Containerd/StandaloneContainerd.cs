using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Containerd.Services.Version.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;
using Grpc.Core;
using Grpc.Net.Client;
using PodMigrate.Core.Grpc;

namespace PodMigrate.TestKit.Containerd;

/// <summary>
/// A private containerd 2.x for one test (class): its own root, state, temp and opt directories and its own grpc,
/// ttrpc and debug sockets under one temp directory; the CRI plugins and NRI disabled, so it shares nothing with the
/// host's or another test's containerd. Ready when a Version call answers over the socket. Disposing kills it by its
/// PID, waits for it, unmounts whatever is left under its directory and deletes it. Not root or no binary: it fails
/// saying so, nothing is skipped silently.
/// </summary>
public sealed class StandaloneContainerd : IAsyncDisposable
{
    public const string BinaryDirectory = "/opt/podmigrate/containerd/usr/bin";
    public const string BinaryPath = BinaryDirectory + "/containerd";

    private const int MaxLogChars = 64 * 1024;
    private const int MntDetach = 2;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly StringBuilder _log = new();

    private StandaloneContainerd(Process process, string directory)
    {
        _process = process;
        Directory = directory;
    }

    /// <summary>The instance's directory: config.toml, root/, state/, tmp/, opt/ and the sockets.</summary>
    public string Directory { get; }

    /// <summary>containerd's gRPC socket.</summary>
    public string SocketPath => Path.Combine(Directory, "containerd.sock");

    public int ProcessId => _process.Id;

    /// <summary>The daemon's output so far (the tail, for failure messages).</summary>
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

    public GrpcChannel CreateChannel() => GrpcChannels.ForUnixSocket(SocketPath);

    public static async Task<StandaloneContainerd> StartAsync(CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("a standalone containerd needs root (mounts, cgroups): run the tests as root");
        }
        if (!File.Exists(BinaryPath))
        {
            throw new InvalidOperationException($"{BinaryPath} is missing: run scripts/setup.sh (it unpacks containerd 2.1.9 there)");
        }

        // Short: unix socket paths are limited to 108 bytes.
        var directory = System.IO.Directory.CreateTempSubdirectory("pm-ctrd-").FullName;
        var containerd = Launch(directory);
        try
        {
            await containerd.WaitUntilReadyAsync(cancellationToken);
            return containerd;
        }
        catch
        {
            await containerd.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            using var grace = new CancellationTokenSource(ExitTimeout);
            await _process.WaitForExitAsync(grace.Token);
        }
        finally
        {
            _process.Dispose();
            UnmountUnder(Directory);
            if (System.IO.Directory.Exists(Directory))
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
    }

    private static StandaloneContainerd Launch(string directory)
    {
        foreach (var sub in new[] { "root", "state", "tmp", "opt" })
        {
            System.IO.Directory.CreateDirectory(Path.Combine(directory, sub));
        }
        var config = Path.Combine(directory, "config.toml");
        File.WriteAllText(config, $"""
            version = 3
            root = "{directory}/root"
            state = "{directory}/state"
            temp = "{directory}/tmp"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]

            [grpc]
              address = "{directory}/containerd.sock"

            [ttrpc]
              address = "{directory}/containerd.sock.ttrpc"

            [debug]
              address = "{directory}/debug.sock"
              level = "info"

            [plugins."io.containerd.internal.v1.opt"]
              path = "{directory}/opt"

            [plugins."io.containerd.nri.v1.nri"]
              disable = true
            """);

        var startInfo = new ProcessStartInfo(BinaryPath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add("--config");
        startInfo.ArgumentList.Add(config);
        // The daemon's PATH decides which shim, runc and criu run: ours first.
        startInfo.Environment["PATH"] = $"{BinaryDirectory}:/usr/local/sbin:{Environment.GetEnvironmentVariable("PATH")}";
        startInfo.Environment["TMPDIR"] = Path.Combine(directory, "tmp");

        var process = new Process { StartInfo = startInfo };
        var containerd = new StandaloneContainerd(process, directory);
        process.OutputDataReceived += (_, e) => containerd.Append(e.Data);
        process.ErrorDataReceived += (_, e) => containerd.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return containerd;
    }

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        using var channel = CreateChannel();
        var version = new global::Containerd.Services.Version.V1.Version.VersionClient(channel);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReadyTimeout);
        var lastError = "the socket never appeared";
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"containerd exited with code {_process.ExitCode} before it was ready:\n{Log}");
            }
            if (File.Exists(SocketPath))
            {
                try
                {
                    await version.VersionAsync(new Empty(), deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: timeout.Token);
                    return;
                }
                catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
                {
                    lastError = e.Status.Detail;
                }
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new InvalidOperationException($"containerd was not ready within {ReadyTimeout} ({lastError}):\n{Log}");
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_log)
        {
            _log.AppendLine(line);
            if (_log.Length > MaxLogChars)
            {
                _log.Remove(0, _log.Length - MaxLogChars);
            }
        }
    }

    /// <summary>Whatever the daemon or its shims left mounted under <paramref name="directory"/>, deepest first.</summary>
    private static void UnmountUnder(string directory)
    {
        var prefix = directory.TrimEnd('/') + "/";
        var mountPoints = File.ReadAllLines("/proc/self/mountinfo")
            .Select(line => UnescapeMountPath(line.Split(' ')[4]))
            .Where(mountPoint => mountPoint.StartsWith(prefix, StringComparison.Ordinal))
            .OrderByDescending(mountPoint => mountPoint.Length);
        foreach (var mountPoint in mountPoints)
        {
            if (Umount2(mountPoint, MntDetach) != 0)
            {
                throw new IOException($"cannot unmount {mountPoint} (errno {Marshal.GetLastPInvokeError()}): left under {directory}");
            }
        }
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string UnescapeMountPath(string path)
        => path.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal)
            .Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);

    // DllImport, not LibraryImport: the TestKit does not compile unsafe code, and this runs only at teardown.
    [DllImport("libc", EntryPoint = "umount2", SetLastError = true)]
    private static extern int Umount2([MarshalAs(UnmanagedType.LPUTF8Str)] string target, int flags);
}
