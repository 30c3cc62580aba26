using System.Runtime.Versioning;
using PodMigrate.Core.Interop;

namespace PodMigrate.Core.IO;

/// <summary>
/// File-system operations with the durability and exclusivity a shared checkpoint store needs
/// (write, fsync, rename, fsync the directory), on top of <see cref="LibC"/>.
/// </summary>
public static class DurableFileSystem
{
    /// <summary>Mode of every checkpoint file: they hold process memory, secrets included.</summary>
    public const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Mode of every checkpoint directory.</summary>
    public const UnixFileMode PrivateDirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Flushes a directory's entries (creations, renames) to stable storage.</summary>
    public static void FsyncDirectory(string path)
        // Some file systems (and some NFS servers) do not support fsync on a directory: nothing more can be done there.
        => Fsync(path, LibC.O_DIRECTORY, "directory", unsupportedIsFine: true);

    /// <summary>Flushes a file written earlier (and closed) to stable storage.</summary>
    public static void FsyncFile(string path) => Fsync(path, 0, "", unsupportedIsFine: false);

    private static void Fsync(string path, int flags, string what, bool unsupportedIsFine)
    {
        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC | flags);
        if (fd < 0)
        {
            throw LibC.Error(what.Length > 0 ? $"open {what}" : "open", path, LibC.LastErrno());
        }

        try
        {
            if (LibC.Fsync(fd) != 0)
            {
                var errno = LibC.LastErrno();
                if (!(unsupportedIsFine && errno is LibC.EINVAL or LibC.ENOSYS))
                {
                    throw LibC.Error(what.Length > 0 ? $"fsync {what}" : "fsync", path, errno);
                }
            }
        }
        finally
        {
            _ = LibC.Close(fd);
        }
    }

    /// <summary>
    /// Bytes an unprivileged writer can still use on the file system holding <paramref name="path"/>; null when the file
    /// system cannot tell: it reports a size of 0 blocks (smbnetfs, some FUSE and network clients report 0 total and 0
    /// free). A full file system still reports its size, so a 0 there means full, not unknown.
    /// </summary>
    public static long? TryGetAvailableBytes(string path)
    {
        var stat = StatFs(path);
        if (stat.Blocks == 0)
        {
            return null;
        }

        var unit = stat.FragmentSize != 0 ? stat.FragmentSize : stat.BlockSize;
        var bytes = (decimal)stat.BlocksAvailable * unit;
        return bytes > long.MaxValue ? long.MaxValue : (long)bytes;
    }

    /// <summary>
    /// Whether <paramref name="path"/> is on a network or FUSE file system (NFS, SMB/CIFS, FUSE clients such as
    /// smbnetfs), where fsync may send nothing to the server and a write that returned may still be lost: the store
    /// reads back what it wrote there before it publishes.
    /// </summary>
    public static bool IsRemoteFileSystem(string path) => (uint)StatFs(path).Type switch
    {
        // FUSE, NFS, SMB (smbfs), SMB2, CIFS
        0x65735546 or 0x6969 or 0x517B or 0xFE534D42 or 0xFF534D42 => true,
        _ => false,
    };

    /// <summary>
    /// Whether an I/O failure means the share itself failed (its server stopped, stalled or is unreachable: network
    /// clients report EIO, ETIMEDOUT, ENOTCONN, ESTALE...), as opposed to a full disk or a bad path.
    /// </summary>
    public static bool IsShareFailure(IOException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.HResult is LibC.EIO or LibC.ENXIO or LibC.ENODEV or LibC.ESTALE or LibC.ENOTCONN or LibC.ETIMEDOUT
            or LibC.ECONNRESET or LibC.ECONNABORTED or LibC.EHOSTDOWN or LibC.EHOSTUNREACH;
    }

    private static LibC.StatFs StatFs(string path)
        => LibC.StatFsPath(path, out var stat) == 0 ? stat : throw LibC.Error("statfs", path, LibC.LastErrno());

    /// <summary>Creates one directory with <paramref name="mode"/>; false if something already has that name.</summary>
    public static bool TryCreateDirectoryExclusive(string path, UnixFileMode mode = PrivateDirectoryMode)
    {
        if (LibC.Mkdir(path, (uint)mode) == 0)
        {
            // mkdir's mode is filtered by the umask: set it exactly.
            SetMode(path, mode);
            return true;
        }

        var errno = LibC.LastErrno();
        return errno == LibC.EEXIST ? false : throw LibC.Error("mkdir", path, errno);
    }

    /// <summary>Renames <paramref name="source"/> to <paramref name="destination"/> unless the destination exists; false if it does.</summary>
    public static bool TryRenameNoReplace(string source, string destination)
    {
        if (LibC.RenameAt2(LibC.AT_FDCWD, source, LibC.AT_FDCWD, destination, LibC.RENAME_NOREPLACE) == 0)
        {
            return true;
        }

        var errno = LibC.LastErrno();
        if (errno is LibC.EEXIST or LibC.ENOTEMPTY)
        {
            return false;
        }

        if (errno is not (LibC.EINVAL or LibC.ENOSYS))
        {
            throw LibC.Error("rename", $"{source} -> {destination}", errno);
        }

        // RENAME_NOREPLACE is not supported everywhere (NFS): a directory rename still refuses a non-empty target.
        if (Path.Exists(destination))
        {
            return false;
        }

        if (LibC.Rename(source, destination) == 0)
        {
            return true;
        }

        errno = LibC.LastErrno();
        return errno is LibC.EEXIST or LibC.ENOTEMPTY ? false : throw LibC.Error("rename", $"{source} -> {destination}", errno);
    }

    /// <summary>Whether an I/O failure means the file system (or the quota) is full.</summary>
    public static bool IsOutOfSpace(IOException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        // On Unix, .NET puts the raw errno into HResult.
        return exception.HResult is LibC.ENOSPC or LibC.EDQUOT;
    }

    /// <summary>Sets a file's or directory's permission bits.</summary>
    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!IsUnix)
        {
            throw NotUnix();
        }

        File.SetUnixFileMode(path, mode);
    }

    /// <summary>A file's or directory's permission bits (follows symlinks).</summary>
    public static UnixFileMode GetMode(string path)
    {
        if (!IsUnix)
        {
            throw NotUnix();
        }

        return File.GetUnixFileMode(path);
    }

    /// <summary>Creates a directory (and missing parents) with mode 0700.</summary>
    public static void CreatePrivateDirectory(string path)
    {
        if (!IsUnix)
        {
            throw NotUnix();
        }

        Directory.CreateDirectory(path, PrivateDirectoryMode);
    }

    /// <summary>Creates (or truncates) a file with mode 0600 for sequential writing.</summary>
    public static FileStream CreatePrivateFile(string path, FileMode mode = FileMode.CreateNew, int bufferSize = 1 << 16)
    {
        if (!IsUnix)
        {
            throw NotUnix();
        }

        return new(path, new FileStreamOptions
        {
            Mode = mode,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = bufferSize,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
            UnixCreateMode = PrivateFileMode,
        });
    }

    /// <summary>
    /// Opens a file for reading without the advisory lock .NET takes on open (flock, shared), which conflicts with the
    /// exclusive one a writing FileStream holds: for following a file while another stream still writes it. Null when
    /// the file (or its directory) does not exist.
    /// </summary>
    public static FileStream? TryOpenReadWhileWritten(string path)
    {
        var fd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = LibC.LastErrno();
            return errno == LibC.ENOENT ? null : throw LibC.Error("open", path, errno);
        }
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, bufferSize: 0);
    }

    /// <summary>Opens a file for one sequential read.</summary>
    public static FileStream OpenSequentialRead(string path, int bufferSize = 1 << 16)
        => new(path, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read,
            BufferSize = bufferSize,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
        });

    /// <summary>Writes a small file atomically: temporary name beside it, fsync, rename over, fsync the directory.</summary>
    public static Task WriteFileAtomicallyAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
        => WriteFileAtomicallyAsync(path, content, durable: true, cancellationToken);

    /// <summary>
    /// Writes a small file atomically (a reader sees all of it or nothing): temporary name beside it, rename over; with
    /// <paramref name="durable"/>, fsynced before the rename and the directory after it (else the caller makes it durable
    /// later, <see cref="FsyncFile"/>).
    /// </summary>
    public static async Task WriteFileAtomicallyAsync(string path, ReadOnlyMemory<byte> content, bool durable, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path)) ?? throw new ArgumentException($"no directory in {path}", nameof(path));
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var stream = CreatePrivateFile(temporary))
            {
                await stream.WriteAsync(content, cancellationToken);
                await stream.FlushAsync(cancellationToken);
                if (durable)
                {
                    stream.Flush(flushToDisk: true);
                }
            }

            File.Move(temporary, path, overwrite: true);
            if (durable)
            {
                FsyncDirectory(directory);
            }
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    // PodMigrate runs where CRIU runs; the guard tells the platform analyzer so without marking every caller.
    [UnsupportedOSPlatformGuard("windows")]
    private static bool IsUnix => !OperatingSystem.IsWindows();

    private static PlatformNotSupportedException NotUnix() => new("PodMigrate's checkpoint files need a Unix file system");
}
