using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.TestKit.Agent;

namespace PodMigrate.Controller.Tests.Agents;

/// <summary>
/// A stand-in for a node's agent: the real gRPC layer on Kestrel (mutual TLS or cleartext) serving the agent API's
/// GetNodeInfo and Health, answering with its node's name, on one port of one or more loopback addresses.
/// </summary>
internal sealed class FakeAgentServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;

    private FakeAgentServer(WebApplication app, string nodeName, int port)
    {
        _app = app;
        NodeName = nodeName;
        Port = port;
    }

    public string NodeName { get; }

    public int Port { get; }

    /// <summary>GetNodeInfo calls that reached a handler (none may, when the handshake refuses the client).</summary>
    public int Calls => Volatile.Read(ref _calls);

    public static async Task<FakeAgentServer> StartAsync(string nodeName, ServerCredentials credentials, params IPAddress[] addresses)
    {
        var port = TestAgentLayout.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var address in addresses.Length == 0 ? [IPAddress.Loopback] : addresses)
            {
                kestrel.ListenGrpcTcp(new IPEndPoint(address, port), credentials);
            }
        });
        var app = builder.Build();
        var server = new FakeAgentServer(app, nodeName, port);
        app.MapGrpcService(new GrpcServiceDefinition(AgentMethods.ServiceName)
            .AddUnary(AgentMethods.GetNodeInfo, (_, _) =>
            {
                Interlocked.Increment(ref server._calls);
                return Task.FromResult(new NodeInfo { NodeName = nodeName });
            })
            .AddUnary(AgentMethods.Health, (_, _) => Task.FromResult(new HealthResponse { Status = HealthResponse.Types.ServingStatus.Serving })),
            new GrpcServerOptions { ExceptionMapper = ErrorMapping.ToStatus });
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
