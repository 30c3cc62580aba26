using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PodMigrate.Node.Criu;

/// <summary>The few libc calls <c>criu swrk</c> needs that .NET does not expose: a SOCK_SEQPACKET socketpair, fd flags, directory fds.</summary>
internal static partial class CriuNative
{
    private const int AfUnix = 1;
    private const int SockSeqpacket = 5;
    private const int SockCloexec = 0x80000;
    private const int FSetfd = 2;
    private const int FdCloexec = 1;
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloexec = 0x80000;

    /// <summary>A connected SOCK_SEQPACKET pair, both ends close-on-exec: ours as a socket, the child's as a plain fd.</summary>
    public static (SafeSocketHandle Parent, SafeFileHandle Child) SeqpacketPair()
    {
        Span<int> fds = stackalloc int[2];
        if (SocketPair(AfUnix, SockSeqpacket | SockCloexec, 0, fds) != 0)
        {
            throw new IOException($"socketpair(AF_UNIX, SOCK_SEQPACKET) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        return (new SafeSocketHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>Sets or clears FD_CLOEXEC: cleared, the fd survives exec into a child under the same number.</summary>
    public static void SetCloseOnExec(SafeFileHandle fd, bool closeOnExec)
    {
        if (Fcntl((int)fd.DangerousGetHandle(), FSetfd, closeOnExec ? FdCloexec : 0) != 0)
        {
            throw new IOException($"fcntl(F_SETFD) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>An O_DIRECTORY fd (CRIU opens it through /proc/&lt;caller&gt;/fd/N, so close-on-exec does not matter).</summary>
    public static SafeFileHandle OpenDirectory(string path)
    {
        var fd = Open(path, ORdonly | ODirectory | OCloexec);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw errno == 2
                ? new DirectoryNotFoundException($"directory {path} does not exist")
                : new IOException($"open({path}, O_DIRECTORY) failed: errno {errno}");
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static partial int SocketPair(int domain, int type, int protocol, Span<int> fds);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);
}
