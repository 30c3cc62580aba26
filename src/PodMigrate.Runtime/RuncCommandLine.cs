namespace PodMigrate.Runtime;

/// <summary>
/// A runc command line as the shim writes it: global flags, the command, its flags and arguments. Only what the
/// runtime needs is parsed; <see cref="GlobalArgs"/> keeps the global flags exactly as given (they are passed on).
/// </summary>
internal sealed record RuncCommandLine
{
    /// <summary>runc's global flags that take a value (urfave/cli: -x, --x, --x=v, -x=v all work).</summary>
    private static readonly string[] GlobalValueFlags = ["log", "log-format", "root", "criu", "rootless"];

    /// <summary>Flags of `runc create` that take a value.</summary>
    private static readonly string[] CreateValueFlags = ["bundle", "b", "console-socket", "pid-file", "preserve-fds"];

    public required IReadOnlyList<string> GlobalArgs { get; init; }

    public string? Command { get; init; }

    public IReadOnlyList<string> CommandArgs { get; init; } = [];

    public string? Root { get; init; }

    public string? Log { get; init; }

    public string? LogFormat { get; init; }

    /// <summary>runc's --criu (the CRIU binary runc runs), when the shim gave one.</summary>
    public string? Criu { get; init; }

    /// <summary>
    /// Whether the runtime could have anything to do with this call (a `create` or a `start`); every other call goes to
    /// runc before anything else happens. Reads the arguments only: no allocation, no file, no environment.
    /// </summary>
    public static bool MayBeHandled(ReadOnlySpan<string> args)
    {
        var i = CommandIndex(args);
        return i < args.Length && args[i] is "create" or "start";
    }

    /// <summary>Where the command is: the first argument after the global flags and their values (args.Length: none).</summary>
    public static int CommandIndex(ReadOnlySpan<string> args)
    {
        var i = 0;
        for (; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg.Length < 2 || arg[0] != '-')
            {
                break;
            }
            if (TakesGlobalValue(arg))
            {
                i++; // the value, whatever it looks like (urfave/cli takes the next argument)
            }
        }
        return Math.Min(i, args.Length);
    }

    /// <summary>"--root" or "-log" (a global flag whose value is the next argument); false for "--root=x" and bool flags.</summary>
    private static bool TakesGlobalValue(string arg)
    {
        var name = arg.AsSpan().TrimStart('-');
        if (name.Contains('='))
        {
            return false;
        }
        foreach (var flag in GlobalValueFlags)
        {
            if (name.SequenceEqual(flag))
            {
                return true;
            }
        }
        return false;
    }

    public static RuncCommandLine Parse(IReadOnlyList<string> args)
    {
        var all = args as string[] ?? [.. args];
        var commandAt = CommandIndex(all);
        string? root = null, log = null, logFormat = null, criu = null;
        for (var i = 0; i < commandAt; i++)
        {
            var (name, value) = SplitFlag(all[i]);
            if (Array.IndexOf(GlobalValueFlags, name) < 0)
            {
                continue;
            }
            if (value is null && i + 1 < commandAt)
            {
                value = all[++i];
            }
            switch (name)
            {
                case "root": root = value; break;
                case "log": log = value; break;
                case "log-format": logFormat = value; break;
                case "criu": criu = value; break;
            }
        }
        return new RuncCommandLine
        {
            GlobalArgs = all[..commandAt],
            Command = commandAt < all.Length ? all[commandAt] : null,
            CommandArgs = commandAt < all.Length ? all[(commandAt + 1)..] : [],
            Root = root,
            Log = log,
            LogFormat = logFormat,
            Criu = criu,
        };
    }

    /// <summary>"--bundle=x" → ("bundle", "x"); "-b" → ("b", null).</summary>
    internal static (string Name, string? Value) SplitFlag(string arg)
    {
        var name = arg.TrimStart('-');
        var eq = name.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? (name, null) : (name[..eq], name[(eq + 1)..]);
    }

    /// <summary>The flags of `runc create` (or null when the line is not one the runtime understands: it is passed on).</summary>
    public CreateArgs? ParseCreate()
    {
        if (Command != "create")
        {
            return null;
        }
        string? bundle = null, consoleSocket = null, pidFile = null, id = null;
        bool noPivot = false, noNewKeyring = false, preserveFds = false;
        var a = CommandArgs;
        for (var i = 0; i < a.Count; i++)
        {
            var arg = a[i];
            if (arg == "--")
            {
                // Everything after "--" is an argument: exactly the one id, as runc's `create` requires.
                if (id is not null || i + 2 != a.Count) return null;
                id = a[i + 1];
                break;
            }
            if (arg.Length < 2 || arg[0] != '-')
            {
                if (id is not null) return null; // a second argument: runc refuses the line, so it goes to runc
                id = arg;
                continue;
            }
            var (name, value) = SplitFlag(arg);
            if (Array.IndexOf(CreateValueFlags, name) >= 0 && value is null)
            {
                if (i + 1 >= a.Count) return null;
                value = a[++i];
            }
            switch (name)
            {
                case "bundle" or "b": bundle = value; break;
                case "console-socket": consoleSocket = value; break;
                case "pid-file": pidFile = value; break;
                case "preserve-fds": preserveFds = value is not ("0" or ""); break;
                case "no-pivot": noPivot = true; break;
                case "no-new-keyring": noNewKeyring = true; break;
                default: return null; // a flag this runtime does not know: runc decides
            }
        }
        // Only a container id runc itself would accept as one is ever handled here: anything else goes to runc unchanged,
        // which refuses it. (An id like "-x" or "a/../b" would otherwise reach the restore's argv or a path.) An empty
        // --bundle is the current directory, as for runc (found by the runtime-cmdline fuzzer: it reached the restore
        // line and the spec's path as "").
        return id is null || !IsContainerId(id) ? null
            : new CreateArgs(id, string.IsNullOrEmpty(bundle) ? Directory.GetCurrentDirectory() : bundle, consoleSocket, pidFile, noPivot, noNewKeyring, preserveFds);
    }

    /// <summary>The container id of `runc start ID` (null for anything else).</summary>
    public string? ParseStartId()
        => Command == "start" && CommandArgs.Count == 1 && IsContainerId(CommandArgs[0]) ? CommandArgs[0] : null;

    /// <summary>runc's rule for container ids (libcontainer's idRegex ^[\w+-\.]+$, and not "." or ".."): ASCII only here.</summary>
    public static bool IsContainerId(string id)
        => id.Length > 0 && id is not ("." or "..") && id[0] != '-'
           && id.AsSpan().IndexOfAnyExcept(ContainerIdChars) < 0;

    private static readonly System.Buffers.SearchValues<char> ContainerIdChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.");

    /// <summary>
    /// The `runc restore` that replaces this create: the shim's global flags, then the create's own bundle, pid file,
    /// console socket and --no-pivot, the prepared images, and the id last (it is never a flag: see <see cref="IsContainerId"/>).
    /// </summary>
    public IReadOnlyList<string> RestoreArgs(CreateArgs create, string images, string work, bool lazyPages = false)
    {
        ArgumentNullException.ThrowIfNull(create);
        var args = new List<string>(GlobalArgs) { "restore", "--detach", "--bundle", create.Bundle, "--image-path", images, "--work-path", work };
        if (lazyPages) args.Add("--lazy-pages"); // CRIU connects to the lazy-pages daemon's socket in the work directory
        if (create.PidFile is not null) args.AddRange(["--pid-file", create.PidFile]);
        if (create.ConsoleSocket is not null) args.AddRange(["--console-socket", create.ConsoleSocket]);
        if (create.NoPivot) args.Add("--no-pivot");
        args.Add(create.Id);
        return args;
    }
}

internal sealed record CreateArgs(string Id, string Bundle, string? ConsoleSocket, string? PidFile, bool NoPivot, bool NoNewKeyring, bool PreserveFds);
