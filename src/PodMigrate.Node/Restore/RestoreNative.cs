using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PodMigrate.Node.Restore;

/// <summary>The syscalls restoring needs and .NET does not expose: overlay whiteouts (mknod), opaque markers (setxattr), owners, hard links, unmounts, entering a network namespace.</summary>
internal static partial class RestoreNative
{
    public const uint CharacterDevice = 0x2000; // S_IFCHR
    public const int DetachMount = 2; // MNT_DETACH

    [LibraryImport("libc", EntryPoint = "mknod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mknod(string path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "lsetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int LSetXattr(string path, string name, ReadOnlySpan<byte> value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "lchown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int LChown(string path, int owner, int group);

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Link(string existing, string created);

    public const int NewNetworkNamespace = 0x40000000; // CLONE_NEWNET

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    public static partial int Setns(SafeFileHandle namespaceFd, int type);

    [LibraryImport("libc", EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);

    /// <summary>Throws an IOException naming the call and the path when a libc call returned -1.</summary>
    public static void Check(int result, string call, string path)
    {
        if (result != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"{call} {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }
}
