using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using PodMigrate.Core.Interop;

namespace PodMigrate.Node.Criu;

/// <summary>What <c>criu swrk</c> needs that .NET does not expose, over <see cref="LibC"/>: a SOCK_SEQPACKET socketpair, fd flags, directory fds.</summary>
internal static class CriuNative
{
    /// <summary>A connected SOCK_SEQPACKET pair, both ends close-on-exec: ours as a socket, the child's as a plain fd.</summary>
    public static (SafeSocketHandle Parent, SafeFileHandle Child) SeqpacketPair()
    {
        Span<int> fds = stackalloc int[2];
        if (LibC.SocketPair(LibC.AF_UNIX, LibC.SOCK_SEQPACKET | LibC.SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw LibC.Error("socketpair", "(AF_UNIX, SOCK_SEQPACKET)");
        }
        return (new SafeSocketHandle(fds[0], ownsHandle: true), new SafeFileHandle(fds[1], ownsHandle: true));
    }

    /// <summary>Sets or clears FD_CLOEXEC: cleared, the fd survives exec into a child under the same number.</summary>
    public static void SetCloseOnExec(SafeFileHandle fd, bool closeOnExec)
    {
        if (LibC.Fcntl((int)fd.DangerousGetHandle(), LibC.F_SETFD, closeOnExec ? LibC.FD_CLOEXEC : 0) != 0)
        {
            throw LibC.Error("fcntl(F_SETFD)", $"fd {fd.DangerousGetHandle()}");
        }
    }

    /// <summary>An O_DIRECTORY fd (CRIU opens it through /proc/&lt;caller&gt;/fd/N, so close-on-exec does not matter).</summary>
    public static SafeFileHandle OpenDirectory(string path)
    {
        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = LibC.LastErrno();
            throw errno == LibC.ENOENT
                ? new DirectoryNotFoundException($"directory {path} does not exist")
                : LibC.Error("open(O_DIRECTORY)", path, errno);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
