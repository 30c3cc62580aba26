using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PodMigrate.Core.Interop;

/// <summary>What restoring a root file system and a network needs: overlay whiteouts (mknod), opaque markers (xattrs), owners, hard links, unmounts, entering a network namespace.</summary>
internal static partial class LibC
{
    public const uint S_IFCHR = 0x2000;
    public const int MNT_DETACH = 2;
    public const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(Library, EntryPoint = "mknod", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mknod(string path, uint mode, ulong device);

    [LibraryImport(Library, EntryPoint = "lsetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int LSetXattr(string path, string name, ReadOnlySpan<byte> value, nuint size, int flags);

    [LibraryImport(Library, EntryPoint = "lgetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static unsafe partial nint LGetXattr(string path, string name, byte* value, nuint size);

    [LibraryImport(Library, EntryPoint = "lchown", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int LChown(string path, int owner, int group);

    [LibraryImport(Library, EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Link(string existing, string created);

    [LibraryImport(Library, EntryPoint = "setns", SetLastError = true)]
    public static partial int Setns(SafeFileHandle namespaceFd, int type);

    [LibraryImport(Library, EntryPoint = "umount2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Umount2(string target, int flags);
}
