using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using PodMigrate.Core.Errors;

namespace PodMigrate.Node.Criu;

/// <summary>
/// CRIU through its RPC protocol (one <c>criu swrk</c> per request): version, kernel checks, and dump / restore of a
/// process tree. For containers, runc drives CRIU through containerd; this client is for what they do not expose.
/// </summary>
public sealed partial class CriuClient
{
    private readonly CriuClientOptions _options;
    private readonly ILogger _logger;

    public CriuClient(CriuClientOptions? options = null, ILogger<CriuClient>? logger = null)
    {
        _options = options ?? new CriuClientOptions();
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    public async Task<CriuVersion> VersionAsync(CancellationToken cancellationToken)
    {
        var response = await CallAsync(new criu_req { Type = criu_req_type.Version }, "getting the CRIU version", logPath: null, cancellationToken);
        var v = response.Version ?? throw new PodMigrateException(ErrorKind.Internal, "criu answered VERSION without a version");
        return new CriuVersion(v.MajorNumber, v.MinorNumber, v.HasSublevel ? v.Sublevel : 0, v.HasGitid ? v.Gitid : null);
    }

    /// <summary>What <c>criu check</c> does: fails (FailedPrecondition, with CRIU's log) when this kernel cannot checkpoint/restore.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        // CHECK without options is refused: CRIU needs a directory for its log even here.
        var directory = Directory.CreateTempSubdirectory("pm-criu-check-").FullName;
        try
        {
            using var work = OpenDirectory(directory);
            var request = new criu_req { Type = criu_req_type.Check, Opts = BaseOptions(work, work: null, "check.log") };
            await CallAsync(request, "checking the kernel for CRIU", Path.Combine(directory, "check.log"), cancellationToken, failureKind: ErrorKind.FailedPrecondition);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    public async Task<CriuFeatures> CheckFeaturesAsync(CancellationToken cancellationToken)
    {
        var request = new criu_req
        {
            Type = criu_req_type.FeatureCheck,
            Features = new criu_features { MemTrack = true, LazyPages = true, PidfdStore = true },
        };
        var response = await CallAsync(request, "checking CRIU features", logPath: null, cancellationToken);
        var f = response.Features ?? throw new PodMigrateException(ErrorKind.Internal, "criu answered FEATURE_CHECK without features");
        return new CriuFeatures(f.MemTrack, f.LazyPages, f.PidfdStore);
    }

    /// <summary>Dumps the process tree rooted at <see cref="CriuDumpOptions.Pid"/> into <see cref="CriuDumpOptions.ImagesDirectory"/>.</summary>
    public async Task<CriuDumpResult> DumpAsync(CriuDumpOptions dump, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dump);
        using var images = OpenDirectory(dump.ImagesDirectory);
        using var work = dump.WorkDirectory is null ? null : OpenDirectory(dump.WorkDirectory);
        var opts = BaseOptions(images, work, dump.LogFile);
        opts.Pid = dump.Pid;
        opts.LeaveRunning = dump.LeaveRunning;
        opts.ShellJob = dump.ShellJob;
        opts.TcpEstablished = dump.TcpEstablished;
        opts.ExtUnixSk = dump.ExtUnixSockets;
        opts.FileLocks = dump.FileLocks;
        opts.OrphanPtsMaster = dump.OrphanPtsMaster;
        opts.TrackMem = dump.TrackMemory;
        var logPath = Path.Combine(dump.WorkDirectory ?? dump.ImagesDirectory, dump.LogFile);
        LogDumping(dump.Pid, dump.ImagesDirectory, dump.LeaveRunning);
        await CallAsync(new criu_req { Type = criu_req_type.Dump, Opts = opts }, $"dumping process tree {dump.Pid} into {dump.ImagesDirectory}", logPath, cancellationToken);
        LogDumped(dump.Pid, dump.ImagesDirectory);
        return new CriuDumpResult(logPath);
    }

    /// <summary>Restores the process tree dumped in <see cref="CriuRestoreOptions.ImagesDirectory"/>; returns the root's pid (the dumped one).</summary>
    public async Task<int> RestoreAsync(CriuRestoreOptions restore, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(restore);
        using var images = OpenDirectory(restore.ImagesDirectory);
        using var work = restore.WorkDirectory is null ? null : OpenDirectory(restore.WorkDirectory);
        var opts = BaseOptions(images, work, restore.LogFile);
        opts.ShellJob = restore.ShellJob;
        opts.TcpEstablished = restore.TcpEstablished;
        opts.ExtUnixSk = restore.ExtUnixSockets;
        opts.FileLocks = restore.FileLocks;
        opts.OrphanPtsMaster = restore.OrphanPtsMaster;
        var logPath = Path.Combine(restore.WorkDirectory ?? restore.ImagesDirectory, restore.LogFile);
        var response = await CallAsync(new criu_req { Type = criu_req_type.Restore, Opts = opts }, $"restoring from {restore.ImagesDirectory}", logPath, cancellationToken);
        var pid = response.Restore?.Pid ?? throw new PodMigrateException(ErrorKind.Internal, "criu answered RESTORE without a pid");
        LogRestored(pid, restore.ImagesDirectory);
        return pid;
    }

    private criu_opts BaseOptions(SafeFileHandle images, SafeFileHandle? work, string logFile)
    {
        if (logFile.Contains('/', StringComparison.Ordinal))
        {
            throw PodMigrateException.InvalidArgument($"CRIU log file '{logFile}' must be a bare name (it lands in the work directory)");
        }
        var opts = new criu_opts
        {
            ImagesDirFd = images.DangerousGetHandle().ToInt32(),
            LogLevel = _options.LogLevel,
            LogFile = logFile,
        };
        if (work is not null)
        {
            opts.WorkDirFd = work.DangerousGetHandle().ToInt32();
        }
        return opts;
    }

    private async Task<criu_resp> CallAsync(criu_req request, string doing, string? logPath, CancellationToken cancellationToken, ErrorKind failureKind = ErrorKind.Internal)
    {
        var response = await CriuSwrk.CallAsync(_options, request, onNotify: null, cancellationToken);
        if (response.Success)
        {
            return response;
        }
        var reason = response.HasCrErrmsg ? response.CrErrmsg : "no message";
        var errno = response.HasCrErrno ? $" (errno {response.CrErrno})" : "";
        using var excerptTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var excerpt = logPath is null ? null : await CriuLog.ErrorExcerptAsync(logPath, excerptTimeout.Token);
        LogFailed(doing, reason);
        throw new PodMigrateException(failureKind, $"{doing}: CRIU failed: {reason}{errno}", details: excerpt);
    }

    private static SafeFileHandle OpenDirectory(string path)
    {
        try
        {
            return CriuNative.OpenDirectory(path);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.NotFound, e.Message, e);
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "CRIU dumping process tree {Pid} into {ImagesDirectory} (leave running: {LeaveRunning})")]
    private partial void LogDumping(int pid, string imagesDirectory, bool leaveRunning);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "CRIU dumped process tree {Pid} into {ImagesDirectory}")]
    private partial void LogDumped(int pid, string imagesDirectory);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "CRIU restored process tree {Pid} from {ImagesDirectory}")]
    private partial void LogRestored(int pid, string imagesDirectory);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "CRIU failed {Doing}: {Reason}")]
    private partial void LogFailed(string doing, string reason);
}
