using PodMigrate.Agent.V1;
using Progress = PodMigrate.Agent.V1.Progress;
using Spectre.Console;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// Shows an operation's progress: a live status line on a terminal, one line per phase on stderr otherwise
/// (so that stdout stays clean for -o json and scripts).
/// </summary>
internal static class ProgressView
{
    public static async Task<T> RunAsync<T>(string title, bool quiet, Func<Action<Progress>, Task<T>> operation)
    {
        if (quiet || !AnsiConsole.Profile.Capabilities.Interactive || Console.IsErrorRedirected)
        {
            var lastPhase = Phase.Unspecified;
            return await operation(p =>
            {
                if (!quiet && p.Phase != lastPhase)
                {
                    lastPhase = p.Phase;
                    Console.Error.WriteLine($"{title}: {Describe(p)}");
                }
            });
        }
        return await AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync($"{title}…", context =>
            operation(p => context.Status($"{title}: {Markup.Escape(Describe(p))}")));
    }

    private static string Describe(Progress p)
    {
        var phase = p.Phase.ToString().ToLowerInvariant();
        var bytes = p.BytesDone > 0 ? $" ({p.BytesDone / (1024.0 * 1024.0):F1} MiB)" : "";
        return string.IsNullOrEmpty(p.Message) ? phase + bytes : $"{phase}: {p.Message}{bytes}";
    }
}
