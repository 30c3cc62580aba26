using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime;

/// <summary>What the lazy-pages supervisor is handed (one JSON argument): where the pages are, and whom to kill if they cannot all be served.</summary>
internal sealed record LazyPagesJob
{
    public required string CheckpointId { get; init; }

    public required string PreparedRoot { get; init; }

    /// <summary>The prepared staging: CRIU's images are in it; removed once every page is served.</summary>
    public required string Staging { get; init; }

    public required string Work { get; init; }

    public required string ContainerId { get; init; }

    public required string Runc { get; init; }

    public required IReadOnlyList<string> RuncGlobalArgs { get; init; }

    public string? Criu { get; init; }

    public string? Log { get; init; }

    public string? LogFormat { get; init; }

    public double TimeoutSeconds { get; init; }
}

/// <summary>
/// Post-copy restore from the prepared staging. The create starts this supervisor (the runtime's own binary, run as
/// <c>podmigrate-runc podmigrate-lazy-pages JOB</c>, detached from the shim's session and stdio), which runs CRIU's
/// lazy-pages daemon on the staging's images with the restore's work directory (CRIU's restore finds the daemon through
/// <c>lazy-pages.socket</c> there); then `runc restore --lazy-pages` returns as soon as everything but the memory is
/// back, and the process runs while the daemon fills its pages through userfaultfd. The supervisor waits for the
/// daemon (bounded by <see cref="LazyPagesJob.TimeoutSeconds"/>) and only then removes the staging. A daemon that fails,
/// or does not finish in time, leaves pages the process would read as zeros: the supervisor kills the restored
/// container and records why (<see cref="LazyPagesRecord"/>), and the controller rolls the migration back (it does not
/// commit before the record says every page was served, and the source is held until then).
/// </summary>
internal static class LazyPagesSupervisor
{
    /// <summary>argv[1] of the supervisor (Native/pass_through.c knows it too: never handed to runc).</summary>
    public const string Command = "podmigrate-lazy-pages";

    /// <summary>CRIU's socket in the work directory, made by the daemon, connected to by the restore.</summary>
    public const string SocketName = "lazy-pages.socket";

    public const string DaemonLog = "lazy-pages.log";

    /// <summary>How long the daemon may take to serve every page (1 GiB takes about a second from tmpfs).</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <summary>How long the daemon may take to listen on its socket.</summary>
    private static readonly TimeSpan ListenTimeout = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Starts the supervisor and returns once the daemon listens (the restore may connect). Throws, with the daemon's
    /// log, when it does not get there; nothing is left running then.
    /// </summary>
    public static Process Start(LazyPagesJob job)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath ?? throw new RuntimeException("podmigrate: no path of the runtime's own binary"))
        {
            UseShellExecute = false,
            // Not the container's stdio (the create's): pipes of ours, which the supervisor swaps for /dev/null at once.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Command);
        start.ArgumentList.Add(JsonSerializer.Serialize(job, RuntimeJson.Default.LazyPagesJob));
        var supervisor = Process.Start(start) ?? throw new RuntimeException($"podmigrate: could not start {start.FileName} {Command}");
        supervisor.StandardInput.Close();
        var socket = Path.Combine(job.Work, SocketName);
        var waited = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (supervisor.HasExited || waited.Elapsed > ListenTimeout)
            {
                Stop(supervisor);
                throw new RuntimeException($"podmigrate: CRIU's lazy-pages daemon for checkpoint {job.CheckpointId} did not listen on {socket} within {ListenTimeout.TotalSeconds:F0} s; nothing was restored. CRIU: {LogTail(Path.Combine(job.Work, DaemonLog))}");
            }
            Thread.Sleep(2);
        }
        return supervisor;
    }

    /// <summary>Kills the supervisor and the daemon (its process group) and reaps the supervisor.</summary>
    public static void Stop(Process supervisor)
    {
        if (!supervisor.HasExited)
        {
            LibC.KillGroup(supervisor.Id, LibC.SigKill);
            supervisor.WaitForExit();
        }
    }

    /// <summary>The supervisor's process: runs the daemon, waits for it, then removes the staging or kills the container.</summary>
    public static int Run(string jobJson)
    {
        var job = JsonSerializer.Deserialize(jobJson, RuntimeJson.Default.LazyPagesJob) ?? throw new RuntimeException("podmigrate: empty lazy-pages job");
        var log = new RuntimeLog(job.Log, job.LogFormat);
        var errno = LibC.Detach();
        if (errno != 0)
        {
            log.Error($"podmigrate: lazy pages of checkpoint {job.CheckpointId}: could not detach from the shim (errno {errno})");
            return 1;
        }
        var started = Stopwatch.StartNew();
        var daemonLog = Path.Combine(job.Work, DaemonLog);
        var timeout = job.TimeoutSeconds > 0 ? TimeSpan.FromSeconds(job.TimeoutSeconds) : DefaultTimeout;
        string? failure;
        try
        {
            var start = new ProcessStartInfo(job.Criu ?? "criu") { UseShellExecute = false };
            foreach (var a in (string[])["lazy-pages", "--images-dir", Path.Combine(job.Staging, PreparedLayout.ImagesDirectory), "--work-dir", job.Work, "--log-file", DaemonLog])
            {
                start.ArgumentList.Add(a);
            }
            using var daemon = Process.Start(start) ?? throw new RuntimeException($"podmigrate: could not start {start.FileName}");
            if (!daemon.WaitForExit(timeout))
            {
                daemon.Kill();
                daemon.WaitForExit();
                failure = $"CRIU's lazy-pages daemon had not served every page after {timeout.TotalSeconds:F0} s (killed)";
            }
            else
            {
                failure = daemon.ExitCode == 0 ? null : $"CRIU's lazy-pages daemon exited with {daemon.ExitCode}";
            }
        }
        catch (Win32Exception e)
        {
            failure = $"CRIU's lazy-pages daemon could not be started: {e.Message}";
        }
        var filledAt = DateTimeOffset.UtcNow;
        if (failure is null)
        {
            // A small process is filled before its create has even returned: the staging is removed only once the create
            // has handed it over (the seal gone, the claim naming this supervisor), so the create never finds it gone.
            WaitForHandOver(job);
            Write(job, new LazyPagesRecord
            {
                CheckpointId = job.CheckpointId,
                ContainerId = job.ContainerId,
                FilledAtUnixNanos = (filledAt - DateTimeOffset.UnixEpoch).Ticks * 100,
                Seconds = started.Elapsed.TotalSeconds,
            });
            try
            {
                Directory.Delete(job.Staging, recursive: true); // one-shot, and now nobody reads it any more
            }
            catch (IOException e)
            {
                log.Info($"could not remove the consumed staging {job.Staging}: {e.Message}");
            }
            log.Info($"lazy pages of checkpoint {job.CheckpointId}: every page served in {started.Elapsed.TotalSeconds:F3} s; staging removed");
            return 0;
        }

        // Pages the process never got would read as zeros: it must not go on.
        failure += $"; CRIU: {LogTail(Path.Combine(job.Work, DaemonLog))}; the restored container {job.ContainerId} was killed";
        var runc = new Runc(job.Runc);
        var killed = runc.Run([.. job.RuncGlobalArgs, "kill", job.ContainerId, "KILL"]);
        if (killed != 0)
        {
            failure += $" (runc kill exited with {killed})";
        }
        Write(job, new LazyPagesRecord
        {
            CheckpointId = job.CheckpointId,
            ContainerId = job.ContainerId,
            Seconds = started.Elapsed.TotalSeconds,
            Failure = failure,
        });
        log.Error($"podmigrate: lazy pages of checkpoint {job.CheckpointId} failed: {failure}");
        return 1;
    }

    /// <summary>How long the create may take to hand the staging over after its restore (it does so right after runc returns).</summary>
    private static readonly TimeSpan HandOverTimeout = TimeSpan.FromSeconds(60);

    private static void WaitForHandOver(LazyPagesJob job)
    {
        var claim = Path.Combine(job.Staging, PreparedLayout.ClaimFile);
        var mine = $"{Environment.ProcessId} ";
        var waited = Stopwatch.StartNew();
        while (waited.Elapsed < HandOverTimeout)
        {
            try
            {
                if (File.ReadAllText(claim).StartsWith(mine, StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (IOException)
            {
                // not there (yet), or being rewritten
            }
            Thread.Sleep(5);
        }
    }

    private static void Write(LazyPagesJob job, LazyPagesRecord record)
        => Restorer.WriteAtomically(PreparedLayout.PagesRecordOf(job.PreparedRoot, job.CheckpointId),
            JsonSerializer.SerializeToUtf8Bytes(record, RuntimeContractJson.Default.LazyPagesRecord));

    /// <summary>The last error lines of a CRIU log (or its last lines), for messages.</summary>
    public static string LogTail(string path)
    {
        if (!File.Exists(path))
        {
            return $"no {path}";
        }
        var lines = File.ReadAllLines(path);
        var errors = lines.Where(l => l.Contains("Error", StringComparison.Ordinal)).TakeLast(3).ToArray();
        return string.Join(" | ", errors.Length > 0 ? errors : lines.TakeLast(3)) + $" (log: {path})";
    }
}
