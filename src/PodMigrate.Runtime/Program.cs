using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime;

/// <summary>
/// podmigrate-runc: every call goes to runc unchanged (exec), except the create of a container whose spec asks for a
/// prepared checkpoint (a `runc restore --detach`) and the `start` after it (nothing to start). See Restorer.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        // The pass-through path (state, kill, delete, exec, ps, pause, …: almost every call the shim makes) looks at the
        // arguments and nothing else before it becomes runc: no spec, no log file, no JSON. `bench runtime` measures it.
        if (args is [LazyPagesSupervisor.Command, var job])
        {
            return Supervise(job);
        }
        if (!RuncCommandLine.MayBeHandled(args))
        {
            return PassThrough(Runc.Locate(), args);
        }
        return CreateOrStart(args);
    }

    private static int Supervise(string job)
    {
        try
        {
            return LazyPagesSupervisor.Run(job);
        }
#pragma warning disable CA1031 // the process boundary: the supervisor's stdio is /dev/null, so say it where runc's log is
        catch (Exception e)
#pragma warning restore CA1031
        {
            new RuntimeLog(null, null).Error($"podmigrate: lazy-pages supervisor failed: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static int PassThrough(Runc runc, string[] args)
    {
        var errno = runc.Exec(args);
        Console.Error.WriteLine($"podmigrate-runc: exec {runc.Path}: errno {errno}");
        return 127;
    }

    private static int CreateOrStart(string[] args)
    {
        var line = RuncCommandLine.Parse(args);
        var runc = Runc.Locate();
        var log = new RuntimeLog(line.Log, line.LogFormat);
        try
        {
            var restorer = new Restorer(runc, line, log, PreparedLayout.ResolveRoot());
            if (line.ParseCreate() is { } create && restorer.TryCreate(create))
            {
                return 0;
            }
            if (line.ParseStartId() is { } id && restorer.TryStart(id))
            {
                return 0;
            }
        }
        catch (RuntimeException e)
        {
            log.Error(e.Message);
            return 1;
        }
#pragma warning disable CA1031 // the process boundary: whatever went wrong fails the create with its message, nothing runs
        catch (Exception e)
#pragma warning restore CA1031
        {
            log.Error($"podmigrate: {line.Command} failed: {e.GetType().Name}: {e.Message}");
            return 1;
        }
        return PassThrough(runc, args);
    }
}
