using PodMigrate.Core.Interop;

namespace PodMigrate.Node.Restore;

/// <summary>
/// containerd 2.1 mounts a checkpoint image read-only at <c>&lt;temp&gt;/checkpointNNN</c> while it imports it, and
/// leaves that mount behind when the restore fails. Callers take a <see cref="Snapshot"/> before the CRI call and
/// <see cref="UnmountNewAsync"/> after a failure: only mounts that appeared in between, with that name, are removed.
/// </summary>
public static class LeakedMounts
{
    private const string MountInfo = "/proc/self/mountinfo";

    /// <summary>The mount points of the checkpointNNN form now mounted.</summary>
    public static IReadOnlySet<string> Snapshot()
        => File.ReadLines(MountInfo).Select(MountPoint).Where(IsCheckpointMount).ToHashSet(StringComparer.Ordinal);

    /// <summary>Lazily unmounts (and removes) checkpointNNN mounts that are not in <paramref name="before"/>; returns them.</summary>
    public static IReadOnlyList<string> UnmountNew(IReadOnlySet<string> before)
    {
        ArgumentNullException.ThrowIfNull(before);
        var leaked = Snapshot().Where(m => !before.Contains(m)).ToList();
        foreach (var mountPoint in leaked)
        {
            LibC.Check(LibC.Umount2(mountPoint, LibC.MNT_DETACH), "umount2", mountPoint);
            if (Directory.Exists(mountPoint) && !Directory.EnumerateFileSystemEntries(mountPoint).Any())
            {
                Directory.Delete(mountPoint);
            }
        }
        return leaked;
    }

    /// <summary>Field 5 of a mountinfo line, with the kernel's octal escapes (\040 for a space...) decoded.</summary>
    private static string MountPoint(string line)
    {
        var fields = line.Split(' ');
        return fields.Length > 4 ? Unescape(fields[4]) : "";
    }

    private static bool IsCheckpointMount(string mountPoint)
    {
        var name = Path.GetFileName(mountPoint);
        return name.Length > "checkpoint".Length
               && name.StartsWith("checkpoint", StringComparison.Ordinal)
               && name["checkpoint".Length..].All(char.IsAsciiDigit);
    }

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }
        var builder = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && field.AsSpan(i + 1, 3).ToArray().All(c => c is >= '0' and <= '7'))
            {
                builder.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                builder.Append(field[i]);
            }
        }
        return builder.ToString();
    }
}
