using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using PodMigrate.Kube.ApiServer;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate apiserver`: the in-process Kubernetes API server, standalone, for the local cluster and kubectl.
/// `kubectl apply` works with its default validation: the server's OpenAPI documents let kubectl validate custom resources
/// on the server and skip the built-in kinds, for which this server has no schemas (see OpenApi in the server).
/// </summary>
internal static class ApiServerCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port (0: any free one)", DefaultValueFactory = _ => 6443 };
        var listen = new Option<string>("--listen") { Description = "Address to bind (default 127.0.0.1: the server has no authorization)", DefaultValueFactory = _ => "127.0.0.1" };
        var kubeconfigOut = new Option<string?>("--kubeconfig-out") { Description = "Write a kubeconfig for kubectl here (e.g. /run/podmigrate/kubeconfig)" };
        var token = new Option<string?>("--token") { Description = "Require this bearer token (it goes into the kubeconfig)" };
        var tls = new Option<bool>("--tls") { Description = "Serve HTTPS with a self-signed certificate (its PEM goes into the kubeconfig as the CA)" };

        var command = new Command("apiserver", "Run the in-process Kubernetes API server (in memory) until interrupted")
        {
            port, listen, kubeconfigOut, token, tls,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!IPAddress.TryParse(parse.GetValue(listen), out var address))
            {
                Console.Error.WriteLine($"--listen {parse.GetValue(listen)} is not an IP address");
                return ExitCodes.Usage;
            }
            var options = new ApiServerOptions
            {
                Port = parse.GetValue(port),
                BindAddress = address,
                BearerToken = parse.GetValue(token),
                UseTls = parse.GetValue(tls),
            };
            await using var server = await KubeApiServer.StartAsync(options, logging => logging.AddSimpleConsole(), cancellationToken);
            if (parse.GetValue(kubeconfigOut) is { } path)
            {
                await server.WriteKubeconfigAsync(path, cancellationToken);
                Console.WriteLine($"kubeconfig: {path}");
            }
            Console.WriteLine($"serving the Kubernetes API on {server.BaseAddress}");
            await server.WaitForShutdownAsync(cancellationToken);
            return ExitCodes.Ok;
        });
        return command;
    }
}
