using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate apiserver`: the in-process Kubernetes API server, standalone, for the local cluster and kubectl.
/// `kubectl apply` works with its default validation: the server's OpenAPI documents let kubectl validate custom resources
/// on the server and skip the built-in kinds, for which this server has no schemas (see OpenApi in the server).
/// Identities as kube-apiserver's flags give them: --token-auth-file (token,user,uid,"groups"), --client-ca-file (client
/// certificates: CN = user, O = groups, with --tls), --authorization-mode RBAC (the stored roles and bindings decide).
/// </summary>
internal static class ApiServerCommand
{
    public static Command Create()
    {
        var port = new Option<int>("--port") { Description = "TCP port (0: any free one)", DefaultValueFactory = _ => 6443 };
        var listen = new Option<string>("--listen") { Description = "Address to bind (default 127.0.0.1)", DefaultValueFactory = _ => "127.0.0.1" };
        var kubeconfigOut = new Option<string?>("--kubeconfig-out") { Description = "Write an admin kubeconfig here (e.g. /run/podmigrate/kubeconfig): --token, else the token file's first system:masters user" };
        var token = new Option<string?>("--token") { Description = "Require this bearer token, of a user \"admin\" in system:masters (it goes into the kubeconfig)" };
        var tokenFile = new Option<string?>("--token-auth-file") { Description = "Static tokens, one per line: token,user,uid,\"group1,group2\" (as kube-apiserver's)" };
        var clientCa = new Option<string?>("--client-ca-file") { Description = "CA bundle (PEM) for client certificates: CN = user, O = groups (needs --tls)" };
        var authorizationMode = new Option<string>("--authorization-mode") { Description = "AlwaysAllow, or RBAC: the stored Roles, ClusterRoles and bindings decide", DefaultValueFactory = _ => "AlwaysAllow" };
        authorizationMode.AcceptOnlyFromAmong("AlwaysAllow", "RBAC");
        var tls = new Option<bool>("--tls") { Description = "Serve HTTPS with a self-signed certificate (its PEM goes into the kubeconfig as the CA)" };

        var command = new Command("apiserver", "Run the in-process Kubernetes API server (in memory) until interrupted")
        {
            port, listen, kubeconfigOut, token, tokenFile, clientCa, authorizationMode, tls,
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
                AuthorizeWithRbac = parse.GetValue(authorizationMode) == "RBAC",
            };
            if (parse.GetValue(tokenFile) is { } tokens)
            {
                options.Tokens = StaticToken.ParseFile(await File.ReadAllTextAsync(tokens, cancellationToken), tokens);
            }
            if (parse.GetValue(clientCa) is { } ca)
            {
                options.ClientCertificateAuthorityPem = await File.ReadAllTextAsync(ca, cancellationToken);
            }
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
