using System.Formats.Tar;
using System.IO.Compression;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Interop;

namespace PodMigrate.Node.Restore;

/// <summary>
/// Applies a checkpoint's rootfs-diff.tar (an OCI layer: files, <c>.wh.NAME</c> deletions, <c>.wh..wh..opq</c> opaque
/// directories; gzip-compressed as containerd writes it, or plain as CRI-O and PodMigrate write it) to the upper
/// directory of a new, not yet mounted overlayfs snapshot, in overlayfs' own terms: deletions become 0:0 character
/// devices, opaque directories get <c>trusted.overlay.opaque=y</c>. Entry names that leave the directory are refused.
/// </summary>
public static class RootfsDiffApplier
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    /// <summary>Applies <paramref name="diffTar"/> onto <paramref name="upperDirectory"/>; returns the number of entries applied.</summary>
    public static async Task<int> ApplyAsync(string diffTar, string upperDirectory, CancellationToken cancellationToken)
    {
        var root = Path.GetFullPath(upperDirectory);
        if (!Directory.Exists(root))
        {
            throw PodMigrateException.FailedPrecondition($"snapshot upper directory {root} does not exist");
        }
        await using var file = new FileStream(diffTar, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var gzip = await IsGzipAsync(file, cancellationToken);
        await using var layer = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : (Stream)file;
        await using var reader = new TarReader(layer, leaveOpen: true);
        var applied = 0;
        try
        {
            while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
            {
                Apply(entry, root, diffTar);
                if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is { } data)
                {
                    await WriteFileAsync(entry, Resolve(root, entry.Name, diffTar), data, cancellationToken);
                }
                applied++;
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{diffTar} is not a readable layer tar: {e.Message}", e);
        }
        return applied;
    }

    private static async Task<bool> IsGzipAsync(FileStream file, CancellationToken cancellationToken)
    {
        var magic = new byte[2];
        var read = await file.ReadAtLeastAsync(magic, 2, throwOnEndOfStream: false, cancellationToken);
        file.Position = 0;
        return read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }

    private static void Apply(TarEntry entry, string root, string diffTar)
    {
        var path = Resolve(root, entry.Name, diffTar);
        var name = Path.GetFileName(path);
        var parent = Path.GetDirectoryName(path)!;
        if (name == OpaqueMarker)
        {
            Directory.CreateDirectory(parent);
            ReadOnlySpan<byte> yes = "y"u8;
            LibC.Check(LibC.LSetXattr(parent, "trusted.overlay.opaque", yes, (nuint)yes.Length, 0), "lsetxattr", parent);
            return;
        }
        if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
        {
            var deleted = Path.Combine(parent, name[WhiteoutPrefix.Length..]);
            Directory.CreateDirectory(parent);
            RemoveExisting(deleted);
            LibC.Check(LibC.Mknod(deleted, LibC.S_IFCHR, 0), "mknod", deleted);
            return;
        }
        Directory.CreateDirectory(parent);
        switch (entry.EntryType)
        {
            case TarEntryType.Directory:
                if (!Directory.Exists(path))
                {
                    RemoveExisting(path);
                    Directory.CreateDirectory(path);
                }
                SetAttributes(entry, path);
                break;
            case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                RemoveExisting(path);
                break;
            case TarEntryType.SymbolicLink:
                RemoveExisting(path);
                File.CreateSymbolicLink(path, entry.LinkName);
                LibC.Check(LibC.LChown(path, entry.Uid, entry.Gid), "lchown", path);
                break;
            case TarEntryType.HardLink:
                RemoveExisting(path);
                var target = Resolve(root, entry.LinkName, diffTar);
                LibC.Check(LibC.Link(target, path), "link", path);
                break;
            default:
                throw new PodMigrateException(ErrorKind.FailedPrecondition,
                    $"{diffTar}: entry {entry.Name} is a {entry.EntryType}, which restoring a root file system does not support");
        }
    }

    private static async Task WriteFileAsync(TarEntry entry, string path, Stream data, CancellationToken cancellationToken)
    {
        await using (var output = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            Options = FileOptions.Asynchronous,
        }))
        {
            await data.CopyToAsync(output, cancellationToken);
        }
        SetAttributes(entry, path);
    }

    private static void SetAttributes(TarEntry entry, string path)
    {
        LibC.Check(LibC.LChown(path, entry.Uid, entry.Gid), "lchown", path);
        File.SetUnixFileMode(path, entry.Mode);
        File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
    }

    /// <summary>Removes whatever is at <paramref name="path"/> (file, link, device, directory tree); nothing if absent.</summary>
    private static void RemoveExisting(string path)
    {
        var directory = new DirectoryInfo(path);
        if (directory.Exists && directory.LinkTarget is null)
        {
            directory.Delete(recursive: true);
        }
        else if (File.Exists(path) || directory.LinkTarget is not null)
        {
            File.Delete(path);
        }
    }

    /// <summary>The host path of an entry name, refusing absolute names and names that climb out with "..".</summary>
    private static string Resolve(string root, string name, string diffTar)
    {
        var relative = name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
        if (name.StartsWith('/') || relative.Split('/').Any(part => part == ".."))
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{diffTar}: entry {name} points outside the root file system");
        }
        var path = Path.GetFullPath(Path.Combine(root, relative.TrimEnd('/')));
        if (path != root && !path.StartsWith(root + "/", StringComparison.Ordinal))
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{diffTar}: entry {name} points outside the root file system");
        }
        return path;
    }
}
