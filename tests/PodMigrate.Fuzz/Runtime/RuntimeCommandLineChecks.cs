using PodMigrate.Fuzz.Harnesses;
using PodMigrate.Runtime;

namespace PodMigrate.Fuzz.Runtime;

/// <summary>
/// What the runtime-cmdline harness checks on an argument vector (the target of <see cref="RuntimeCommandLineHarness"/>;
/// it lives outside Harnesses/ because it needs PodMigrate.Runtime, which Core.Tests does not reference).
/// A bug is: any exception; a parse that loses, adds or reorders an argument (the runtime passes the global flags on
/// unchanged); the allocation-free fast path and the parser disagreeing on whether the call may be a create or start
/// (a create the fast path sends to runc is a clone started fresh instead of restored); a create or start id runc would
/// refuse or that looks like a flag; a `runc restore` line that runc would read differently from what was meant
/// (another command, other global flags, another id, a value swallowed as a flag).
/// </summary>
internal static class RuntimeCommandLineChecks
{
    private const string Images = "/prepared/ck/images";
    private const string Work = "/b/podmigrate-criu-work";

    public static void Check(IReadOnlyList<string> argv)
    {
        var args = argv.ToArray();
        var line = RuncCommandLine.Parse(args);
        string[] rebuilt = [.. line.GlobalArgs, .. line.Command is null ? [] : new[] { line.Command }, .. line.CommandArgs];
        if (!rebuilt.SequenceEqual(args))
        {
            throw new FuzzFindingException($"Parse does not give back the arguments: [{Show(args)}] became [{Show(rebuilt)}]");
        }

        var handled = line.Command is "create" or "start";
        if (RuncCommandLine.MayBeHandled(args) != handled)
        {
            throw new FuzzFindingException($"the fast path says {!handled} and the parser says command '{line.Command}' for [{Show(args)}]");
        }

        if (line.ParseStartId() is { } startId
            && (line.Command != "start" || line.CommandArgs.Count != 1 || !RuncCommandLine.IsContainerId(startId)))
        {
            throw new FuzzFindingException($"start id '{startId}' taken from [{Show(args)}]");
        }

        if (line.ParseCreate() is not { } create)
        {
            return;
        }

        if (line.Command != "create" || !RuncCommandLine.IsContainerId(create.Id) || !line.CommandArgs.Contains(create.Id) || create.Bundle.Length == 0)
        {
            throw new FuzzFindingException($"create {create} taken from [{Show(args)}]");
        }

        CheckRestore(line, create, args);
    }

    /// <summary>The restore line, read back the way runc reads it.</summary>
    private static void CheckRestore(RuncCommandLine line, CreateArgs create, string[] args)
    {
        var restore = line.RestoreArgs(create, Images, Work).ToArray();
        var back = RuncCommandLine.Parse(restore);
        if (back.Command != "restore" || !back.GlobalArgs.SequenceEqual(line.GlobalArgs) || back.Root != line.Root || back.Log != line.Log)
        {
            throw new FuzzFindingException($"the restore line [{Show(restore)}] reads as command '{back.Command}' with other global flags (from [{Show(args)}])");
        }

        // runc restore's own flags: every value flag is followed by its value, the id is the one argument left.
        string[] valueFlags = ["--bundle", "--image-path", "--work-path", "--pid-file", "--console-socket"];
        var expected = new Dictionary<string, string?>
        {
            ["--bundle"] = create.Bundle, ["--image-path"] = Images, ["--work-path"] = Work,
            ["--pid-file"] = create.PidFile, ["--console-socket"] = create.ConsoleSocket,
        };
        string? id = null;
        var a = back.CommandArgs;
        for (var i = 0; i < a.Count; i++)
        {
            if (Array.IndexOf(valueFlags, a[i]) >= 0)
            {
                if (i + 1 >= a.Count || a[i + 1] != expected[a[i]])
                {
                    throw new FuzzFindingException($"restore flag {a[i]} lost its value in [{Show(restore)}]");
                }

                i++;
            }
            else if (a[i] is "--detach" or "--no-pivot")
            {
            }
            else if (id is null && !a[i].StartsWith('-'))
            {
                id = a[i];
            }
            else
            {
                throw new FuzzFindingException($"restore argument '{a[i]}' is neither a flag nor the id in [{Show(restore)}]");
            }
        }

        if (id != create.Id || restore[^1] != create.Id)
        {
            throw new FuzzFindingException($"the restore line [{Show(restore)}] restores '{id}', not '{create.Id}'");
        }
    }

    private static string Show(IEnumerable<string> args) => string.Join(", ", args.Select(a => $"\"{a.Replace("\0", "\\0", StringComparison.Ordinal)}\""));
}
