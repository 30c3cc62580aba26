using System.Globalization;

namespace PodMigrate.Agent.Memory;

/// <summary>One cgroup's memory figures (or the host's, from /proc/meminfo).</summary>
internal readonly record struct MemoryFigures(long UsageBytes, long WorkingSetBytes, long LimitBytes, long LimitHits, long OomKills, double PressureSome, double PressureFull);

/// <summary>
/// The memory files of a cgroup, v1 (memory.usage_in_bytes, limit_in_bytes, failcnt, oom_control, stat) or v2
/// (memory.current, max, events, stat, pressure), and /proc/meminfo and /proc/pressure/memory. The parsers are pure.
/// <c>memory.pressure_level</c> (v1) is not readable: it only notifies through cgroup.event_control and an eventfd, so
/// v1's pressure comes from the host's PSI and the limit hits (failcnt).
/// </summary>
internal static class CgroupMemoryFiles
{
    public const string Mount = "/sys/fs/cgroup";

    /// <summary>v1 reports "no limit" as a huge page-aligned number.</summary>
    private const long NoLimitAbove = 1L << 60;

    public static bool IsCgroupV2(string mount = Mount) => File.Exists(Path.Combine(mount, "cgroup.controllers"));

    /// <summary>The directory of <paramref name="cgroup"/> ("/a/b") in the memory hierarchy.</summary>
    public static string Directory(string cgroup, bool v2, string mount = Mount)
        => v2 ? mount + "/" + cgroup.Trim('/') : mount + "/memory/" + cgroup.Trim('/');

    /// <summary>Reads a cgroup's figures; null when it is gone (a container that just exited).</summary>
    public static MemoryFigures? Read(string directory, bool v2, double hostPressureSome, double hostPressureFull)
    {
        try
        {
            if (!v2)
            {
                var usage = ReadLong(Path.Combine(directory, "memory.usage_in_bytes"));
                var stat = ParseKeyValues(File.ReadAllText(Path.Combine(directory, "memory.stat")));
                var limit = ReadLong(Path.Combine(directory, "memory.limit_in_bytes"));
                var oomControl = ParseKeyValues(File.ReadAllText(Path.Combine(directory, "memory.oom_control")));
                return new MemoryFigures(
                    usage,
                    WorkingSet(usage, stat.GetValueOrDefault("total_inactive_file")),
                    limit >= NoLimitAbove ? 0 : limit,
                    ReadLong(Path.Combine(directory, "memory.failcnt")),
                    oomControl.GetValueOrDefault("oom_kill"),
                    hostPressureSome,
                    hostPressureFull);
            }
            var current = ReadLong(Path.Combine(directory, "memory.current"));
            var stat2 = ParseKeyValues(File.ReadAllText(Path.Combine(directory, "memory.stat")));
            var max = File.ReadAllText(Path.Combine(directory, "memory.max")).Trim();
            var events = ParseKeyValues(File.ReadAllText(Path.Combine(directory, "memory.events")));
            var pressure = File.Exists(Path.Combine(directory, "memory.pressure"))
                ? ParsePressure(File.ReadAllText(Path.Combine(directory, "memory.pressure")))
                : (hostPressureSome, hostPressureFull);
            return new MemoryFigures(
                current,
                WorkingSet(current, stat2.GetValueOrDefault("inactive_file")),
                max == "max" ? 0 : long.Parse(max, CultureInfo.InvariantCulture),
                events.GetValueOrDefault("max"),
                events.GetValueOrDefault("oom_kill"),
                pressure.Item1,
                pressure.Item2);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    /// <summary>The host: MemTotal as capacity, MemTotal - MemAvailable as usage and working set.</summary>
    public static MemoryFigures ReadHost(double pressureSome, double pressureFull)
    {
        var info = ParseMemInfo(File.ReadAllText("/proc/meminfo"));
        var total = info.GetValueOrDefault("MemTotal");
        var used = Math.Max(0, total - info.GetValueOrDefault("MemAvailable"));
        return new MemoryFigures(used, used, total, 0, 0, pressureSome, pressureFull);
    }

    /// <summary>/proc/pressure/memory's "some" and "full" avg10, or (-1, -1) where the kernel has no PSI.</summary>
    public static (double Some, double Full) ReadHostPressure()
    {
        try
        {
            return ParsePressure(File.ReadAllText("/proc/pressure/memory"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (-1, -1);
        }
    }

    public static long WorkingSet(long usage, long inactiveFile) => Math.Max(0, usage - inactiveFile);

    /// <summary>"key value" lines (memory.stat, memory.events, memory.oom_control).</summary>
    public static Dictionary<string, long> ParseKeyValues(string text)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 2 && long.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                values[fields[0]] = value;
            }
        }
        return values;
    }

    /// <summary>/proc/meminfo in bytes ("MemTotal:  24684084 kB").</summary>
    public static Dictionary<string, long> ParseMemInfo(string text)
    {
        var values = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }
            var fields = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 1 && long.TryParse(fields[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                values[line[..colon]] = fields.Length > 1 && fields[1] == "kB" ? value * 1024 : value;
            }
        }
        return values;
    }

    /// <summary>PSI: "some avg10=0.12 avg60=… total=…" and "full avg10=…"; the avg10 values, -1 when missing.</summary>
    public static (double Some, double Full) ParsePressure(string text)
    {
        double some = -1, full = -1;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var avg10 = fields.FirstOrDefault(f => f.StartsWith("avg10=", StringComparison.Ordinal));
            if (fields.Length == 0 || avg10 is null || !double.TryParse(avg10["avg10=".Length..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }
            if (fields[0] == "some")
            {
                some = value;
            }
            else if (fields[0] == "full")
            {
                full = value;
            }
        }
        return (some, full);
    }

    private static long ReadLong(string path) => long.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture);
}
