namespace PodMigrate.Core.Archive;

/// <summary>The rules that keep archive entry names and link targets inside the extraction directory.</summary>
public static class ArchivePaths
{
    /// <summary>
    /// The canonical relative name of an entry ("./" and a trailing "/" removed), or null when the name is absolute,
    /// empty, has a ".." or "." segment, an empty segment, a backslash or a NUL.
    /// </summary>
    public static string? Normalize(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var trimmed = name;
        while (trimmed.StartsWith("./", StringComparison.Ordinal))
        {
            trimmed = trimmed[2..];
        }

        trimmed = trimmed.TrimEnd('/');
        if (trimmed.Length == 0 || trimmed[0] == '/' || trimmed.Contains('\\', StringComparison.Ordinal) || trimmed.Contains('\0', StringComparison.Ordinal))
        {
            return null;
        }

        foreach (var segment in trimmed.Split('/'))
        {
            if (segment.Length == 0 || segment == "." || segment == "..")
            {
                return null;
            }
        }

        return trimmed;
    }

    /// <summary>
    /// Whether a symlink named <paramref name="entryName"/> with <paramref name="target"/> stays inside the root: relative,
    /// never climbing above it, and climbing only before it descends. A ".." after a name is refused because the kernel
    /// resolves that name first: with "s/a" -> "..", "s/l" -> "a/.." is the root's parent, though it counts as "s".
    /// </summary>
    public static bool IsContainedLinkTarget(string entryName, string target)
    {
        ArgumentNullException.ThrowIfNull(entryName);
        ArgumentNullException.ThrowIfNull(target);
        if (target.Length == 0 || target[0] == '/' || target.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        // Depth of the directory holding the link, then walk the target's segments from there.
        var depth = entryName.Split('/', StringSplitOptions.RemoveEmptyEntries).Length - 1;
        var descended = false;
        foreach (var segment in target.Split('/'))
        {
            if (segment.Length == 0 || segment == ".")
            {
                continue;
            }

            if (segment != "..")
            {
                descended = true;
            }
            else if (descended || --depth < 0)
            {
                return false;
            }
        }

        return true;
    }
}
