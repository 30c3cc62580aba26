using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using PodMigrate.Core.Grpc;
using PodMigrate.TestKit.Agent;

namespace PodMigrate.Controller.Tests.Agents;

/// <summary>
/// A stand-in for a node's agent: grpc-dotnet on Kestrel (mutual TLS or cleartext) serving the agent API's
/// GetNodeInfo and Health, answering with its node's name, on one port of one or more loopback addresses.
/// </summary>
internal sealed class FakeAgentServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CallCounter _calls;

    private FakeAgentServer(WebApplication app, string nodeName, int port, CallCounter calls)
    {
        _app = app;
        _calls = calls;
        NodeName = nodeName;
        Port = port;
    }

    public string NodeName { get; }

    public int Port { get; }

    /// <summary>GetNodeInfo calls that reached a handler (none may, when the handshake refuses the client).</summary>
    public int Calls => _calls.Count;

    public static async Task<FakeAgentServer> StartAsync(string nodeName, ServerTlsCredentials? tls, params IPAddress[] addresses)
    {
        var port = TestAgentLayout.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            foreach (var address in addresses.Length == 0 ? [IPAddress.Loopback] : addresses)
            {
                kestrel.ListenGrpcTcp(new IPEndPoint(address, port), tls);
            }
        });
        var counter = new CallCounter();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(counter);
        builder.Services.AddSingleton(new FakeAgentService(nodeName, counter));
        var app = builder.Build();
        app.MapGrpcService<FakeAgentService>();
        await app.StartAsync();
        return new FakeAgentServer(app, nodeName, port, counter);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

internal sealed class CallCounter
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Increment() => Interlocked.Increment(ref _count);
}

/// <summary>GetNodeInfo answers with the node's name; Health says serving; the rest is the generated base's Unimplemented.</summary>
internal sealed class FakeAgentService(string nodeName, CallCounter calls) : AgentService.AgentServiceBase
{
    public override Task<NodeInfo> GetNodeInfo(GetNodeInfoRequest request, ServerCallContext context)
    {
        calls.Increment();
        return Task.FromResult(new NodeInfo { NodeName = nodeName });
    }

    public override Task<HealthResponse> Health(HealthRequest request, ServerCallContext context)
        => Task.FromResult(new HealthResponse { Status = HealthResponse.Types.ServingStatus.Serving });
}
