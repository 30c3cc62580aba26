using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using PodMigrate.Kube.Client;

namespace PodMigrate.Cli.Commands;

/// <summary>What the long-running verbs (node emulate, controller) share: the API server's config, console logs, SIGTERM.</summary>
internal static class CliHosting
{
    /// <summary>An explicit kubeconfig, else the usual order ($KUBECONFIG, the service account in a pod, ~/.kube/config).</summary>
    public static async Task<KubeClientConfig> LoadKubeConfigAsync(string? kubeconfig, CancellationToken cancellationToken)
        => kubeconfig is { Length: > 0 } path
            ? await KubeClientConfig.FromKubeconfigFileAsync(path, context: null, cancellationToken)
            : await KubeClientConfig.LoadDefaultAsync(getEnvironment: null, cancellationToken);

    /// <summary>One line per event, UTC timestamps: what log collectors and `tail -f` both read well.</summary>
    public static ILoggerFactory ConsoleLoggerFactory() => LoggerFactory.Create(logging => logging.AddSimpleConsole(console =>
    {
        console.SingleLine = true;
        console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        console.UseUtcTimestamp = true;
    }));

    /// <summary>Runs <paramref name="run"/> until Ctrl-C or SIGTERM (what cluster scripts and pod runtimes send) cancels it.</summary>
    public static async Task RunUntilStoppedAsync(Func<CancellationToken, Task> run, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal =>
        {
            signal.Cancel = true;
            stop.Cancel();
        });
        await run(stop.Token);
    }
}
