using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>
/// One entry of an image layer. <see cref="Path"/> is relative to the image root (<c>bin/busybox</c>; a leading
/// <c>/</c> is accepted and dropped); <c>..</c>, <c>.</c> and empty components are rejected where the entry is made.
/// </summary>
public abstract record LayerEntry
{
    protected LayerEntry(string path) => Path = Normalize(path);

    public string Path { get; }

    public static FileEntry File(string path, string sourcePath, UnixFileMode mode) => new(path, sourcePath, mode);

    public static DirectoryEntry Directory(string path, UnixFileMode mode = DirectoryEntry.DefaultMode) => new(path, mode);

    public static SymlinkEntry Symlink(string path, string target) => new(path, target);

    /// <summary>
    /// Every directory, regular file and symlink under <paramref name="hostDirectory"/>, placed under
    /// <paramref name="destination"/> with their modes (e.g. a checkpoint folder turned into an image's content).
    /// Other file types (devices, sockets, fifos) fail: an image layer built here carries none.
    /// </summary>
    public static IReadOnlyList<LayerEntry> FromDirectory(string hostDirectory, string destination)
    {
        var root = new DirectoryInfo(hostDirectory);
        if (!root.Exists)
        {
            throw PodMigrateException.NotFound($"directory {hostDirectory} does not exist");
        }

        var prefix = destination.Trim('/');
        var entries = new List<LayerEntry>();
        if (prefix.Length > 0)
        {
            entries.Add(Directory(prefix, root.UnixFileMode));
        }

        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false };
        foreach (var info in root.EnumerateFileSystemInfos("*", options))
        {
            var relative = System.IO.Path.GetRelativePath(root.FullName, info.FullName).Replace('\\', '/');
            var path = prefix.Length > 0 ? $"{prefix}/{relative}" : relative;
            entries.Add(info switch
            {
                { LinkTarget: { } target } => Symlink(path, target),
                DirectoryInfo directory => Directory(path, directory.UnixFileMode),
                FileInfo file when (file.Attributes & (FileAttributes.Device | FileAttributes.ReparsePoint)) == 0 => File(path, file.FullName, file.UnixFileMode),
                _ => throw PodMigrateException.InvalidArgument($"{info.FullName} is neither a directory, a regular file nor a symlink"),
            });
        }

        return entries;
    }

    internal static string Normalize(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var trimmed = path.TrimStart('/').TrimEnd('/');
        var parts = trimmed.Split('/');
        if (trimmed.Length == 0 || trimmed.Contains('\0', StringComparison.Ordinal) || parts.Any(p => p.Length == 0 || p is "." or ".."))
        {
            throw PodMigrateException.InvalidArgument($"'{path}' is not a usable path inside an image (no '.', '..' or empty components)");
        }

        return trimmed;
    }
}

/// <summary>A regular file whose content is read from <see cref="SourcePath"/> on the host while the layer is written.</summary>
public sealed record FileEntry : LayerEntry
{
    public FileEntry(string path, string sourcePath, UnixFileMode mode)
        : base(path)
    {
        SourcePath = sourcePath;
        Mode = mode;
    }

    public string SourcePath { get; }

    public UnixFileMode Mode { get; }
}

public sealed record DirectoryEntry : LayerEntry
{
    public const UnixFileMode DefaultMode = (UnixFileMode)0b111_101_101;

    public DirectoryEntry(string path, UnixFileMode mode = DefaultMode)
        : base(path) => Mode = mode;

    public UnixFileMode Mode { get; }
}

public sealed record SymlinkEntry : LayerEntry
{
    public SymlinkEntry(string path, string target)
        : base(path)
    {
        if (string.IsNullOrEmpty(target) || target.Contains('\0', StringComparison.Ordinal))
        {
            throw PodMigrateException.InvalidArgument($"symlink {path} needs a target");
        }

        Target = target;
    }

    public string Target { get; }
}
