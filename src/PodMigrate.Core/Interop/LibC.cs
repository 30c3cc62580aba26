using System.Runtime.InteropServices;

namespace PodMigrate.Core.Interop;

/// <summary>
/// The solution's one libc binding (the calls .NET does not expose), partial by topic: files and directories here,
/// writeback, restore (mknod, xattrs, owners, links, mounts, namespaces) and sockets beside it. Errno is read and turned
/// into an exception only by <see cref="Check"/> and <see cref="Error(string, string, int)"/>. PodMigrate.Runtime (NativeAOT,
/// no Core reference) keeps its own.
/// </summary>
internal static partial class LibC
{
    private const string Library = "libc";

    public const int EEXIST = 17;
    public const int ENOTEMPTY = 39;
    public const int EINVAL = 22;
    public const int ENOSYS = 38;
    public const int ENOSPC = 28;
    public const int EDQUOT = 122;
    public const int EINTR = 4;
    public const int ENOENT = 2;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBUSY = 16;
    public const int ENODEV = 19;
    public const int ESTALE = 116;
    public const int ENOTCONN = 107;
    public const int ETIMEDOUT = 110;
    public const int ECONNRESET = 104;
    public const int ECONNABORTED = 103;
    public const int EHOSTDOWN = 112;
    public const int EHOSTUNREACH = 113;

    public const int O_RDONLY = 0;
    public const int O_DIRECTORY = 0x10000;
    public const int O_CLOEXEC = 0x80000;

    public const int AT_FDCWD = -100;
    public const uint RENAME_NOREPLACE = 1;

    /// <summary>struct statfs on 64-bit Linux (x86_64 and arm64 share this layout: every field is a long but fsid).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatFs
    {
        public long Type;
        public long BlockSize;
        public ulong Blocks;
        public ulong BlocksFree;
        public ulong BlocksAvailable;
        public ulong Files;
        public ulong FilesFree;
        public ulong FsId;
        public long NameLength;
        public long FragmentSize;
        public long Flags;
        public long Spare0;
        public long Spare1;
        public long Spare2;
        public long Spare3;
    }

    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const uint STATX_TYPE = 0x1;
    public const uint STATX_MODE = 0x2;

    /// <summary>struct statx: one layout on every architecture (256 bytes); only the head is named here.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct Statx
    {
        [FieldOffset(0)]
        public uint Mask;

        [FieldOffset(20)]
        public uint Uid;

        [FieldOffset(24)]
        public uint Gid;

        [FieldOffset(28)]
        public ushort Mode;

        [FieldOffset(40)]
        public ulong Size;

        /// <summary>The device a character or block device node stands for.</summary>
        [FieldOffset(128)]
        public uint RdevMajor;

        [FieldOffset(132)]
        public uint RdevMinor;
    }

    [LibraryImport(Library, EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int StatxPath(int dirFd, string path, int flags, uint mask, out Statx buffer);

    [LibraryImport(Library, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport(Library, EntryPoint = "statfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int StatFsPath(string path, out StatFs buffer);

    [LibraryImport(Library, EntryPoint = "mkdir", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Mkdir(string path, uint mode);

    [LibraryImport(Library, EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int RenameAt2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

    [LibraryImport(Library, EntryPoint = "rename", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Rename(string oldPath, string newPath);

    /// <summary>The errno the last libc call (declared with SetLastError) left.</summary>
    public static int LastErrno() => Marshal.GetLastPInvokeError();

    /// <summary>An IOException naming the call, the path and the errno's message; HResult carries the raw errno.</summary>
    public static IOException Error(string call, string path, int errno)
        => new($"{call} {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);

    /// <summary>The <see cref="Error(string, string, int)"/> for the errno the last libc call left.</summary>
    public static IOException Error(string call, string path) => Error(call, path, LastErrno());

    /// <summary>Throws an IOException naming the call and the path when a libc call returned non-zero.</summary>
    public static void Check(int result, string call, string path)
    {
        if (result != 0)
        {
            throw Error(call, path);
        }
    }
}
