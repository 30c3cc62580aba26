using System.Formats.Tar;
using System.Text.Json;

namespace PodMigrate.Runtime;

/// <summary>
/// Applies a checkpoint's root file system changes (rootfs-diff.tar, deleted.files) onto a new container's rootfs
/// before the restore. Every path is resolved inside the rootfs the way the container will see it (symlinks followed
/// with the rootfs as "/", ".." stopping at it), so nothing is written or removed outside it. Refused: absolute or
/// ".." entry names, links whose target climbs out of the rootfs, devices and other special files.
/// </summary>
internal static class RootFsDiff
{
    private const string WhiteoutPrefix = ".wh.";
    private const string OpaqueWhiteout = ".wh..wh..opq";
    private const int MaxSymlinkHops = 255;

    public static int ApplyTar(string rootfs, Stream tar)
    {
        rootfs = Path.GetFullPath(rootfs);
        using var reader = new TarReader(tar, leaveOpen: true);
        var count = 0;
        while (reader.GetNextEntry() is { } entry)
        {
            var components = Components(entry.Name, allowRooted: false)
                ?? throw Refused(entry.Name, "an absolute path or a path with '..'");
            if (components.Length == 0)
            {
                continue; // "./"
            }
            var name = components[^1];
            var parent = ResolveParent(rootfs, components);
            if (name == OpaqueWhiteout)
            {
                // The lower directory's contents are hidden: remove them (the diff's own entries follow).
                if (Directory.Exists(parent) && !IsSymlink(parent))
                {
                    foreach (var child in new DirectoryInfo(parent).EnumerateFileSystemInfos())
                    {
                        RemoveNoFollow(child.FullName);
                    }
                }
                continue;
            }
            if (name.StartsWith(WhiteoutPrefix, StringComparison.Ordinal))
            {
                RemoveNoFollow(Path.Combine(parent, name[WhiteoutPrefix.Length..]));
                continue;
            }
            var target = Path.Combine(parent, name);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    if (!IsDirectoryNoFollow(target))
                    {
                        RemoveNoFollow(target);
                        Directory.CreateDirectory(target);
                    }
                    SetAttributes(target, entry);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    RemoveNoFollow(target);
                    using (var file = new FileStream(target, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
                    {
                        entry.DataStream?.CopyTo(file);
                    }
                    SetAttributes(target, entry);
                    break;
                case TarEntryType.SymbolicLink:
                    if (Escapes(components, entry.LinkName))
                    {
                        throw Refused(entry.Name, $"a symlink to '{entry.LinkName}', which leads out of the root file system");
                    }
                    RemoveNoFollow(target);
                    File.CreateSymbolicLink(target, entry.LinkName);
                    Chown(target, entry);
                    break;
                case TarEntryType.HardLink:
                    var linkComponents = Components(entry.LinkName, allowRooted: false)
                        ?? throw Refused(entry.Name, $"a hard link to '{entry.LinkName}', which leads out of the root file system");
                    if (linkComponents.Length == 0)
                    {
                        throw Refused(entry.Name, "a hard link to the root");
                    }
                    var existing = Path.Combine(ResolveParent(rootfs, linkComponents), linkComponents[^1]);
                    if (!File.Exists(existing) || IsSymlink(existing))
                    {
                        throw Refused(entry.Name, $"a hard link to '{entry.LinkName}', which is not a regular file of the root file system");
                    }
                    RemoveNoFollow(target);
                    var errno = LibC.HardLink(existing, target);
                    if (errno != 0)
                    {
                        throw new RuntimeException($"podmigrate: rootfs diff: link {entry.LinkName} -> {entry.Name}: errno {errno}");
                    }
                    break;
                default:
                    throw Refused(entry.Name, $"a {entry.EntryType} entry (devices and special files are not restored)");
            }
            count++;
        }
        return count;
    }

    /// <summary>Removes the paths of deleted.files (a JSON array; paths relative to the rootfs, a leading '/' allowed).</summary>
    public static int ApplyDeletions(string rootfs, Stream json)
    {
        rootfs = Path.GetFullPath(rootfs);
        var paths = JsonSerializer.Deserialize(json, RuntimeJson.Default.StringArray) ?? [];
        var count = 0;
        foreach (var path in paths)
        {
            var components = Components(path, allowRooted: true) ?? throw Refused(path, "a deleted path with '..'");
            if (components.Length == 0)
            {
                throw Refused(path, "deleting the root");
            }
            var target = Path.Combine(ResolveParent(rootfs, components), components[^1]);
            if (Exists(target))
            {
                RemoveNoFollow(target);
                count++;
            }
        }
        return count;
    }

    /// <summary>The components of a relative entry name, or null when it is rooted (unless allowed) or has "..".</summary>
    internal static string[]? Components(string name, bool allowRooted)
    {
        if (name.Contains('\0', StringComparison.Ordinal) || (!allowRooted && name.StartsWith('/')))
        {
            return null;
        }
        var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        return parts.Contains("..") ? null : parts;
    }

    /// <summary>Whether a symlink at <paramref name="linkComponents"/> pointing at <paramref name="linkTarget"/> climbs above the root.</summary>
    internal static bool Escapes(string[] linkComponents, string linkTarget)
    {
        if (linkTarget.Length == 0 || linkTarget.Contains('\0', StringComparison.Ordinal))
        {
            return true;
        }
        var depth = linkTarget.StartsWith('/') ? 0 : linkComponents.Length - 1;
        foreach (var part in linkTarget.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "..")
            {
                if (--depth < 0)
                {
                    return true;
                }
            }
            else if (part != ".")
            {
                depth++;
            }
        }
        return false;
    }

    /// <summary>
    /// The host path of the directory holding the last component, resolved as inside the container: symlinks on the
    /// way are followed with the rootfs as "/" and ".." stops at the rootfs. Missing directories are created.
    /// </summary>
    private static string ResolveParent(string rootfs, string[] components)
    {
        var pending = new Stack<string>(components.Take(components.Length - 1).Reverse());
        var current = new List<string>();
        var hops = 0;
        while (pending.TryPop(out var part))
        {
            if (part is "" or ".")
            {
                continue;
            }
            if (part == "..")
            {
                if (current.Count > 0) current.RemoveAt(current.Count - 1);
                continue;
            }
            var host = Join(rootfs, current, part);
            var info = new FileInfo(host);
            if (info.LinkTarget is { } linkTarget)
            {
                if (++hops > MaxSymlinkHops)
                {
                    throw new RuntimeException($"podmigrate: rootfs diff: too many symlinks resolving {string.Join('/', components)}");
                }
                if (linkTarget.StartsWith('/'))
                {
                    current.Clear();
                }
                foreach (var p in linkTarget.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse())
                {
                    pending.Push(p);
                }
                continue;
            }
            if (!info.Exists && !Directory.Exists(host))
            {
                Directory.CreateDirectory(host);
            }
            else if (!Directory.Exists(host))
            {
                throw new RuntimeException($"podmigrate: rootfs diff: {string.Join('/', components)}: /{string.Join('/', current.Append(part))} is not a directory");
            }
            current.Add(part);
        }
        return Join(rootfs, current, null);
    }

    private static string Join(string rootfs, List<string> current, string? last)
    {
        var path = current.Count == 0 ? rootfs : Path.Combine(rootfs, string.Join('/', current));
        return last is null ? path : Path.Combine(path, last);
    }

    private static bool IsSymlink(string path) => new FileInfo(path).LinkTarget is not null;

    private static bool Exists(string path) => IsSymlink(path) || File.Exists(path) || Directory.Exists(path);

    private static bool IsDirectoryNoFollow(string path) => !IsSymlink(path) && Directory.Exists(path);

    /// <summary>Removes a file, symlink (not its target) or directory tree (its symlinks not followed).</summary>
    private static void RemoveNoFollow(string path)
    {
        if (IsSymlink(path) || File.Exists(path))
        {
            File.Delete(path);
        }
        else if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true); // does not follow symlinks inside
        }
    }

    /// <summary>Owner, mode and mtime of a file or directory the diff just wrote (never a symlink).</summary>
    private static void SetAttributes(string path, TarEntry entry)
    {
        Chown(path, entry);
        File.SetUnixFileMode(path, entry.Mode);
        if (entry.ModificationTime != default)
        {
            File.SetLastWriteTimeUtc(path, entry.ModificationTime.UtcDateTime);
        }
    }

    private static void Chown(string path, TarEntry entry)
    {
        if (entry is PosixTarEntry posix)
        {
            var errno = LibC.ChangeOwnerNoFollow(path, posix.Uid, posix.Gid);
            if (errno != 0)
            {
                throw new RuntimeException($"podmigrate: rootfs diff: chown {entry.Name} {posix.Uid}:{posix.Gid}: errno {errno}");
            }
        }
    }

    private static RuntimeException Refused(string name, string what)
        => new($"podmigrate: refusing the checkpoint's rootfs diff: entry '{name}' is {what}");
}
