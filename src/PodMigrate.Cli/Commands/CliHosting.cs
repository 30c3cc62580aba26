using System.Runtime.InteropServices;
using k8s;
using k8s.Exceptions;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>What the long-running verbs (node emulate, controller) share: the API server's config, console logs, SIGTERM.</summary>
internal static class CliHosting
{
    /// <summary>
    /// An explicit kubeconfig, else the KubernetesClient package's usual order ($KUBECONFIG, ~/.kube/config, the service account
    /// in a pod). Exec and auth-provider plugins run as kubectl runs them; in a pod the token file is re-read as it rotates.
    /// </summary>
    public static async Task<KubernetesClientConfiguration> LoadKubeConfigAsync(string? kubeconfig, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            return kubeconfig is { Length: > 0 } path
                ? await KubernetesClientConfiguration.BuildConfigFromConfigFileAsync(new FileInfo(path))
                : KubernetesClientConfiguration.BuildDefaultConfig();
        }
        catch (KubeConfigException e)
        {
            throw new PodMigrateException(ErrorKind.InvalidArgument, $"kubeconfig {kubeconfig ?? "(default)"}: {e.Message}", e);
        }
    }

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
