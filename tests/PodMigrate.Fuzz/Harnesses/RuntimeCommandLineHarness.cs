using System.Text;

namespace PodMigrate.Fuzz.Harnesses;

/// <summary>
/// The restore runtime's command line (src/PodMigrate.Runtime, podmigrate-runc: containerd's shim calls it with runc's
/// arguments). The input is the argument vector, arguments separated by NUL bytes. The target is set by the fuzz
/// program (tests/PodMigrate.Fuzz/Runtime/RuntimeCommandLineChecks.cs: the parser, the fast path, the restore line) and
/// by the runtime's regression tests; this file stays free of the runtime so Core.Tests can compile it. A bug is any
/// exception the target throws (the checks throw <see cref="FuzzFindingException"/>).
/// </summary>
public static class RuntimeCommandLineHarness
{
    /// <summary>The parser under test; null while the runtime is not part of this build.</summary>
    public static Action<IReadOnlyList<string>>? Parse { get; set; }

    /// <summary>Which exceptions mean "the command line was refused cleanly".</summary>
    public static Func<Exception, bool> IsExpected { get; set; } = _ => false;

    public static bool IsWired => Parse is not null;

    public static void Run(ReadOnlySpan<byte> input)
    {
        var args = Encoding.UTF8.GetString(input).Split('\0');
        if (Parse is not { } parse)
        {
            return;
        }

        try
        {
            parse(args);
        }
        catch (Exception e) when (IsExpected(e))
        {
        }
    }
}
