using PodMigrate.Core.Processes;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.TestKit.Share;

/// <summary>
/// A real SMB share for one test class: Samba on loopback serving a directory (a tmpfs of a given size: a share that can
/// fill up) and one smbnetfs FUSE mount per node, through scripts/lib/smb-share.sh, the same script `cluster.sh up
/// --share smb` uses. Everything is under one temp directory and goes with <see cref="DisposeAsync"/>. Needs root and
/// Samba, smbnetfs and fuse3 (scripts/setup.sh installs them): without them it fails, naming what is missing.
/// </summary>
public sealed class SmbShare : IAsyncDisposable
{
    private readonly string _root;
    private readonly Dictionary<string, string> _mounts;

    private SmbShare(string root, string serverPath, int port, Dictionary<string, string> mounts)
    {
        _root = root;
        ServerPath = serverPath;
        Port = port;
        _mounts = mounts;
    }

    /// <summary>The directory Samba serves, on the server's side (what the server's disk holds).</summary>
    public string ServerPath { get; }

    public int Port { get; }

    private string State => Path.Combine(_root, "state");

    private static string Script => Path.Combine(ClusterScript.RepositoryRoot, "scripts", "lib", "smb-share.sh");

    /// <summary>The share as <paramref name="node"/> sees it: the root of its own mount.</summary>
    public string MountOf(string node) => _mounts.TryGetValue(node, out var path) ? path : throw new InvalidOperationException($"no SMB mount for node {node}");

    public static async Task<SmbShare> StartAsync(IReadOnlyList<string> nodes, string size, CancellationToken cancellationToken)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            throw new InvalidOperationException("an SMB share needs root (smbd, FUSE mounts): run the tests as root");
        }
        foreach (var tool in new[] { "/usr/sbin/smbd", "/usr/bin/smbnetfs", "/usr/bin/fusermount3" })
        {
            if (!File.Exists(tool))
            {
                throw new InvalidOperationException($"{tool} is missing: run scripts/setup.sh (it installs samba, smbnetfs and fuse3)");
            }
        }
        var root = Directory.CreateTempSubdirectory("pm-smb-").FullName;
        var serverPath = Path.Combine(root, "server");
        var arguments = new List<string> { Script, "up", "--state", Path.Combine(root, "state"), "--path", serverPath, "--size", size };
        arguments.AddRange(nodes.Select(n => $"{n}={Path.Combine(root, "mnt", n)}"));
        ProcessResult result;
        try
        {
            result = await ProcessRunner.RunAsync(new ProcessSpec("/bin/bash", arguments) { Timeout = TimeSpan.FromMinutes(1) }, cancellationToken);
        }
        catch
        {
            await DownAsync(root);
            throw;
        }
        if (!result.Succeeded)
        {
            await DownAsync(root);
            throw new InvalidOperationException($"smb-share.sh up failed with exit code {result.ExitCode}:\n{result.StandardError}");
        }
        var settings = result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        var mounts = nodes.ToDictionary(n => n, n => settings[$"MOUNT_{n}"]);
        return new SmbShare(root, serverPath, int.Parse(settings["PORT"], System.Globalization.CultureInfo.InvariantCulture), mounts);
    }

    /// <summary>Stops smbd and its connection processes; the mounts stay (their calls then fail with EIO).</summary>
    public Task StopServerAsync(CancellationToken cancellationToken) => RunAsync("stop-server", cancellationToken);

    public Task StartServerAsync(CancellationToken cancellationToken) => RunAsync("start-server", cancellationToken);

    public ValueTask DisposeAsync() => new(DownAsync(_root));

    private async Task RunAsync(string verb, CancellationToken cancellationToken)
        => (await ProcessRunner.RunAsync(new ProcessSpec("/bin/bash", [Script, verb, "--state", State]) { Timeout = TimeSpan.FromMinutes(1) }, cancellationToken)).EnsureSuccess();

    private static async Task DownAsync(string root)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await ProcessRunner.RunAsync(new ProcessSpec("/bin/bash", [Script, "down", "--state", Path.Combine(root, "state")]) { Timeout = TimeSpan.FromMinutes(1) }, timeout.Token);
        try
        {
            Directory.Delete(root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
