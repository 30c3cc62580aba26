using System.Runtime.InteropServices;

namespace PodMigrate.Runtime;

/// <summary>
/// The libc calls .NET has no API for. Tmds.LibC (0.5.0) has lchown but no exec*, so this one small class instead of
/// a package for one of two functions.
/// </summary>
internal static unsafe partial class LibC
{
    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static partial int ExecV(byte* path, byte** argv);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true)]
    private static partial int LChown(byte* path, int owner, int group);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true)]
    private static partial int Link(byte* oldPath, byte* newPath);

    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    private static partial int SetSid();

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public const int SigKill = 9;

    /// <summary>
    /// Leaves the caller's session and process group (the shim's) and points stdin, stdout and stderr at /dev/null: the
    /// lazy-pages supervisor must not hold the container's stdio pipes open, nor share its signals. Returns errno.
    /// </summary>
    public static int Detach()
    {
        if (SetSid() < 0)
        {
            return Marshal.GetLastPInvokeError();
        }
        using var devNull = File.Open("/dev/null", FileMode.Open, FileAccess.ReadWrite);
        var fd = (int)devNull.SafeFileHandle.DangerousGetHandle();
        for (var target = 0; target <= 2; target++)
        {
            if (Dup2(fd, target) < 0)
            {
                return Marshal.GetLastPInvokeError();
            }
        }
        return 0;
    }

    /// <summary>Sends <paramref name="signal"/> to a process group (the supervisor leads its own); returns errno (0 on success).</summary>
    public static int KillGroup(int groupLeader, int signal) => Kill(-groupLeader, signal) == 0 ? 0 : Marshal.GetLastPInvokeError();

    /// <summary>A hard link (.NET has none); returns errno (0 on success).</summary>
    public static int HardLink(string existing, string newPath)
    {
        var o = (byte*)Marshal.StringToCoTaskMemUTF8(existing);
        var n = (byte*)Marshal.StringToCoTaskMemUTF8(newPath);
        try
        {
            return Link(o, n) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            Marshal.FreeCoTaskMem((nint)o);
            Marshal.FreeCoTaskMem((nint)n);
        }
    }

    /// <summary>Replaces this process with <paramref name="path"/> (environment unchanged); returns only on failure.</summary>
    public static int Exec(string path, IReadOnlyList<string> argv)
    {
        var pathBytes = (byte*)Marshal.StringToCoTaskMemUTF8(path);
        var args = (byte**)NativeMemory.Alloc((nuint)(argv.Count + 1), (nuint)sizeof(byte*));
        for (var i = 0; i < argv.Count; i++)
        {
            args[i] = (byte*)Marshal.StringToCoTaskMemUTF8(argv[i]);
        }
        args[argv.Count] = null;
        ExecV(pathBytes, args);
        var errno = Marshal.GetLastPInvokeError();
        for (var i = 0; i < argv.Count; i++)
        {
            Marshal.FreeCoTaskMem((nint)args[i]);
        }
        NativeMemory.Free(args);
        Marshal.FreeCoTaskMem((nint)pathBytes);
        return errno;
    }

    /// <summary>chown without following a final symlink; returns errno (0 on success).</summary>
    public static int ChangeOwnerNoFollow(string path, int uid, int gid)
    {
        var p = (byte*)Marshal.StringToCoTaskMemUTF8(path);
        try
        {
            return LChown(p, uid, gid) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            Marshal.FreeCoTaskMem((nint)p);
        }
    }
}
