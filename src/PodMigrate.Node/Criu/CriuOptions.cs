namespace PodMigrate.Node.Criu;

public sealed class CriuClientOptions
{
    /// <summary>The criu binary (resolved on PATH when not rooted); CRIU 4.x is needed on these kernels.</summary>
    public string CriuPath { get; init; } = "criu";

    /// <summary>Deadline of one request (the criu process is killed after it).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>CRIU's log verbosity (0-4); 4 = debug, what one wants when a dump fails.</summary>
    public int LogLevel { get; init; } = 4;
}

/// <summary>What to dump and how (criu_opts of a DUMP request).</summary>
/// <param name="Pid">Root of the process tree.</param>
/// <param name="ImagesDirectory">Existing, empty directory for the image files.</param>
/// <param name="WorkDirectory">Where the log goes; the images directory when null.</param>
/// <param name="LeaveRunning">Keep the tree running after the dump (a snapshot) instead of killing it (a migration).</param>
/// <param name="ShellJob">The tree shares its session / process group / tty with processes outside it.</param>
public sealed record CriuDumpOptions(
    int Pid,
    string ImagesDirectory,
    string? WorkDirectory = null,
    string LogFile = "dump.log",
    bool LeaveRunning = false,
    bool ShellJob = false,
    bool TcpEstablished = false,
    bool ExtUnixSockets = false,
    bool FileLocks = false,
    bool OrphanPtsMaster = false,
    bool TrackMemory = false);

/// <summary>What to restore and how (criu_opts of a RESTORE request).</summary>
public sealed record CriuRestoreOptions(
    string ImagesDirectory,
    string? WorkDirectory = null,
    string LogFile = "restore.log",
    bool ShellJob = false,
    bool TcpEstablished = false,
    bool ExtUnixSockets = false,
    bool FileLocks = false,
    bool OrphanPtsMaster = false);

public sealed record CriuVersion(int Major, int Minor, int Sublevel, string? GitId)
{
    /// <summary>The encoding go-criu and Kubernetes compare against (3.16 = 31600).</summary>
    public int Number => (Major * 10000) + (Minor * 100) + Sublevel;

    public override string ToString() => $"{Major}.{Minor}.{Sublevel}";
}

/// <summary>Kernel/CRIU features: soft-dirty memory tracking (iterative pre-dump), userfaultfd lazy pages, pidfd store.</summary>
public sealed record CriuFeatures(bool MemoryTracking, bool LazyPages, bool PidfdStore);

/// <summary>The outcome of a dump.</summary>
/// <param name="LogPath">CRIU's log of the dump.</param>
public sealed record CriuDumpResult(string LogPath);
