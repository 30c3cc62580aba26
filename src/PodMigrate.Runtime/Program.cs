using PodMigrate.Runtime;
using PodMigrate.Runtime.Contract;

// podmigrate-runc: every call goes to runc unchanged (exec), except the create of a container whose spec asks for a
// prepared checkpoint (a `runc restore --detach`) and the `start` after it (nothing to start). See Restorer.
var line = RuncCommandLine.Parse(args);
var runc = Runc.Locate();
if (line.Command is "create" or "start")
{
    var log = new RuntimeLog(line.Log, line.LogFormat);
    try
    {
        var restorer = new Restorer(runc, line, log, PreparedLayout.ResolveRoot());
        if (line.Command == "create" && line.ParseCreate() is { } create && restorer.TryCreate(create))
        {
            return 0;
        }
        if (line.Command == "start" && line.ParseStartId() is { } id && restorer.TryStart(id))
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
}
var errno = runc.Exec(args);
await Console.Error.WriteLineAsync($"podmigrate-runc: exec {runc.Path}: errno {errno}");
return 127;
