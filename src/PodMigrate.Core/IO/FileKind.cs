using PodMigrate.Core.Interop;

namespace PodMigrate.Core.IO;

/// <summary>What a directory entry is, without following symlinks (from statx's S_IFMT bits).</summary>
public enum FileKind
{
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Unknown,
}

public static class FileKinds
{
    /// <summary>The kind of <paramref name="path"/> itself (lstat semantics).</summary>
    public static FileKind Of(string path)
        => OfOrNull(path) ?? throw new FileNotFoundException($"statx {path}: no such file or directory", path);

    /// <summary>The kind of <paramref name="path"/> itself, or null when nothing has that name.</summary>
    public static FileKind? OfOrNull(string path) => StatOrNull(path) is { } stat ? KindOf(stat.Mode) : null;

    /// <summary>
    /// True for an overlayfs whiteout: a character device with device number 0:0, the mark by which an upper layer
    /// records that a lower file was deleted.
    /// </summary>
    public static bool IsOverlayWhiteout(string path)
    {
        var stat = StatOrNull(path) ?? throw new FileNotFoundException($"statx {path}: no such file or directory", path);
        return KindOf(stat.Mode) == FileKind.CharacterDevice && stat.RdevMajor == 0 && stat.RdevMinor == 0;
    }

    private static LibC.Statx? StatOrNull(string path)
    {
        if (LibC.StatxPath(LibC.AT_FDCWD, path, LibC.AT_SYMLINK_NOFOLLOW, LibC.STATX_TYPE | LibC.STATX_MODE, out var stat) != 0)
        {
            var errno = LibC.LastErrno();
            return errno == LibC.ENOENT ? null : throw LibC.Error("statx", path, errno);
        }
        return stat;
    }

    private static FileKind KindOf(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0xA000 => FileKind.Symlink,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0xC000 => FileKind.Socket,
        _ => FileKind.Unknown,
    };
}
