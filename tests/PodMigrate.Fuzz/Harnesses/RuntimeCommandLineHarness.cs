using System.Text;

namespace PodMigrate.Fuzz.Harnesses;

/// <summary>
/// The slot for the restore runtime's command line parser (src/PodMigrate.Runtime, podmigrate-runc: containerd's shim
/// calls it with runc's arguments). The input is the argument vector, arguments separated by NUL bytes.
/// Until <see cref="Parse"/> is wired the harness only splits its input, and scripts/fuzz.sh skips it.
/// To wire it once PodMigrate.Runtime is merged: reference ../../src/PodMigrate.Runtime from PodMigrate.Fuzz.csproj
/// (and add InternalsVisibleTo PodMigrate.Fuzz there if the parser is internal), then set in Program.cs, e.g.
/// <c>RuntimeCommandLineHarness.Parse = args => { var line = RuncCommandLine.Parse(args); line.ParseCreate(); line.ParseStartId(); };</c>
/// and add the parser's own exception type to <see cref="IsExpected"/>. A bug is any other exception.
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
