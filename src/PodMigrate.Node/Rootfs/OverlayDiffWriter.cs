using System.Formats.Tar;
using PodMigrate.Core.IO;

namespace PodMigrate.Node.Rootfs;

/// <summary>
/// Writes what a container changed in its root filesystem — the upper directory of its overlayfs snapshot — as an
/// OCI layer tar (the archive's rootfs-diff.tar): files as they are, deletions as <c>.wh.NAME</c> entries, opaque
/// directories with <c>.wh..wh..opq</c>. containerd's restore applies such a layer onto the new rootfs.
/// Reads only what changed, never the image's lower layers.
/// </summary>
public static class OverlayDiffWriter
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueMarker = ".wh..wh..opq";

    /// <summary>Writes the diff of <paramref name="upperDirectory"/> to <paramref name="destination"/>; returns the number of entries.</summary>
    public static async Task<int> WriteAsync(string upperDirectory, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (!Directory.Exists(upperDirectory))
        {
            throw new DirectoryNotFoundException($"overlay upper directory {upperDirectory} does not exist");
        }
        var entries = 0;
        await using (var writer = new TarWriter(destination, TarEntryFormat.Pax, leaveOpen: true))
        {
            entries = await WriteDirectoryAsync(writer, upperDirectory, "", cancellationToken);
        }
        return entries;
    }

    private static async Task<int> WriteDirectoryAsync(TarWriter writer, string directory, string prefix, CancellationToken cancellationToken)
    {
        var count = 0;
        var children = new DirectoryInfo(directory).EnumerateFileSystemInfos()
            .OrderBy(i => i.Name, StringComparer.Ordinal);
        foreach (var child in children)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = prefix + child.Name;
            if (FileKinds.IsOverlayWhiteout(child.FullName))
            {
                await writer.WriteEntryAsync(Empty(prefix + WhiteoutPrefix + child.Name), cancellationToken);
                count++;
                continue;
            }
            await writer.WriteEntryAsync(child.FullName, name, cancellationToken);
            count++;
            if (child is DirectoryInfo { LinkTarget: null } subdirectory)
            {
                if (OverlayXattrs.IsOpaqueDirectory(subdirectory.FullName))
                {
                    await writer.WriteEntryAsync(Empty(name + "/" + OpaqueMarker), cancellationToken);
                    count++;
                }
                count += await WriteDirectoryAsync(writer, subdirectory.FullName, name + "/", cancellationToken);
            }
        }
        return count;
    }

    private static PaxTarEntry Empty(string name) => new(TarEntryType.RegularFile, name)
    {
        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        ModificationTime = DateTimeOffset.UnixEpoch,
    };
}
