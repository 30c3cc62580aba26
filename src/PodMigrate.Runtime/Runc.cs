using System.Diagnostics;

namespace PodMigrate.Runtime;

/// <summary>The real runc: found once per call, exec'd for every call the runtime does not handle itself.</summary>
internal sealed class Runc(string path)
{
    /// <summary>Overrides where runc is (an absolute path); otherwise the first `runc` on PATH that is not this binary.</summary>
    public const string PathEnvironmentVariable = "PODMIGRATE_RUNC";

    public string Path { get; } = path;

    public static Runc Locate()
    {
        if (Environment.GetEnvironmentVariable(PathEnvironmentVariable) is { Length: > 0 } configured)
        {
            return new Runc(configured);
        }
        var self = Environment.ProcessPath;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = System.IO.Path.Combine(dir, "runc");
            if (File.Exists(candidate) && !SameFile(candidate, self))
            {
                return new Runc(candidate);
            }
        }
        return new Runc("/usr/sbin/runc");
    }

    private static bool SameFile(string candidate, string? self)
        => self is not null && string.Equals(System.IO.Path.GetFullPath(new FileInfo(candidate).ResolveLinkTarget(true)?.FullName ?? candidate),
                                             System.IO.Path.GetFullPath(self), StringComparison.Ordinal);

    /// <summary>Becomes runc with <paramref name="args"/> (same pid, fds and environment: the shim sees runc). Returns only on failure.</summary>
    public int Exec(IReadOnlyList<string> args)
    {
        var argv = new string[args.Count + 1];
        argv[0] = "runc";
        for (var i = 0; i < args.Count; i++)
        {
            argv[i + 1] = args[i];
        }
        return LibC.Exec(Path, argv);
    }

    /// <summary>Runs runc as a child with this process's stdio (the restored process inherits them, as from `runc create`).</summary>
    public int Run(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(Path) { UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start) ?? throw new RuntimeException($"podmigrate: could not start {Path}");
        process.WaitForExit();
        return process.ExitCode;
    }
}
