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

    public static RuncCommandLine Parse(IReadOnlyList<string> args)
    {
        var global = new List<string>();
        string? root = null, log = null, logFormat = null;
        var i = 0;
        for (; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg.Length < 2 || arg[0] != '-')
            {
                break;
            }
            global.Add(arg);
            var (name, inlineValue) = SplitFlag(arg);
            if (Array.IndexOf(GlobalValueFlags, name) < 0)
            {
                continue;
            }
            var value = inlineValue;
            if (value is null && i + 1 < args.Count)
            {
                value = args[++i];
                global.Add(value);
            }
            switch (name)
            {
                case "root": root = value; break;
                case "log": log = value; break;
                case "log-format": logFormat = value; break;
            }
        }
        return new RuncCommandLine
        {
            GlobalArgs = global,
            Command = i < args.Count ? args[i] : null,
            CommandArgs = i < args.Count ? args.Skip(i + 1).ToArray() : [],
            Root = root,
            Log = log,
            LogFormat = logFormat,
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
                if (i + 1 < a.Count) id ??= a[i + 1];
                break;
            }
            if (arg.Length < 2 || arg[0] != '-')
            {
                id ??= arg;
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
        return id is null ? null : new CreateArgs(id, bundle ?? Directory.GetCurrentDirectory(), consoleSocket, pidFile, noPivot, noNewKeyring, preserveFds);
    }

    /// <summary>The container id of `runc start ID` (null for anything else).</summary>
    public string? ParseStartId()
        => Command == "start" && CommandArgs.Count == 1 && !CommandArgs[0].StartsWith('-') ? CommandArgs[0] : null;
}

internal sealed record CreateArgs(string Id, string Bundle, string? ConsoleSocket, string? PidFile, bool NoPivot, bool NoNewKeyring, bool PreserveFds);
