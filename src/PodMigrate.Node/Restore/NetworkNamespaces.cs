using System.Net.Sockets;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Interop;
using PodMigrate.Core.Processes;

namespace PodMigrate.Node.Restore;

/// <summary>
/// Named network namespaces (<c>/run/netns/NAME</c>) for restored bare containers. A pod's checkpoint was taken in the
/// sandbox's network namespace, which runc declares external to CRIU; restoring it needs an existing namespace to put
/// the process into. iproute2's <c>ip netns</c> is the interface for named namespaces (it bind-mounts the nsfs file),
/// so it is called through <see cref="ProcessRunner"/>; nothing it prints is read.
/// </summary>
public static class NetworkNamespaces
{
    public const string Directory = "/run/netns";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>Creates the namespace with its loopback up; returns its path.</summary>
    public static async Task<string> CreateAsync(string name, CancellationToken cancellationToken)
    {
        Validate(name);
        await RunAsync(["netns", "add", name], cancellationToken);
        try
        {
            await RunAsync(["-n", name, "link", "set", "lo", "up"], cancellationToken);
        }
        catch
        {
            using var cleanup = new CancellationTokenSource(Timeout);
            await DeleteAsync(name, cleanup.Token);
            throw;
        }
        return PathOf(name);
    }

    /// <summary>Deletes the namespace if it exists; false when there was none.</summary>
    public static async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        Validate(name);
        if (!File.Exists(PathOf(name)))
        {
            return false;
        }
        await RunAsync(["netns", "delete", name], cancellationToken);
        return true;
    }

    /// <summary>
    /// A socket of the named namespace, for reaching a service of a restored container that has no address outside it
    /// (its loopback, say). A socket belongs to the namespace it was created in: a thread of its own enters the
    /// namespace (setns), creates the socket and goes back; connecting and I/O then work from any thread.
    /// </summary>
    public static Task<Socket> CreateSocketAsync(string name, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        Validate(name);
        var path = PathOf(name);
        var created = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                created.SetResult(CreateSocketIn(path, family, type, protocol));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or SocketException)
            {
                created.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns " + name,
        };
        thread.Start();
        return created.Task;
    }

    /// <summary>On the calling thread, which must be one of its own: it ends in its original namespace, or ends.</summary>
    private static Socket CreateSocketIn(string path, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        using var own = File.OpenHandle("/proc/thread-self/ns/net");
        using var target = File.Exists(path) ? File.OpenHandle(path) : throw new FileNotFoundException($"network namespace {path} does not exist", path);
        LibC.Check(LibC.Setns(target, LibC.CLONE_NEWNET), "setns", path);
        Socket? socket = null;
        try
        {
            socket = new Socket(family, type, protocol);
        }
        finally
        {
            // The thread is ours alone and ends after this, but it leaves the way it came.
            if (LibC.Setns(own, LibC.CLONE_NEWNET) != 0)
            {
                socket?.Dispose();
                LibC.Check(-1, "setns back from", path);
            }
        }
        return socket;
    }

    public static string PathOf(string name) => Path.Combine(Directory, name);

    private static void Validate(string name)
    {
        if (name.Length is 0 or > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name[0] == '.')
        {
            throw PodMigrateException.InvalidArgument($"'{name}' is not a valid network namespace name");
        }
    }

    private static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        => ProcessRunner.RunCheckedAsync(new ProcessSpec("ip", arguments) { Timeout = Timeout }, cancellationToken);
}
