using System.Net;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Grpc;
using PodMigrate.TestKit.Agent;

namespace PodMigrate.Controller.Tests.Migrations;

/// <summary>
/// A migration waiting on an agent operation is queued when the operation ends, not at its next poll (the poll's
/// latency was on the pause): against an agent that serves WatchOperation over gRPC, and one that does not.
/// </summary>
public sealed class OperationWakeupsTests
{
    private static readonly ObjectKey Key = new("default", "move");

    [Fact]
    public async Task The_migration_is_queued_once_when_its_operation_ends_and_not_before()
    {
        var operation = new ControlledOperation();
        await using var server = await WatchServer.StartAsync(operation);
        using var agent = AgentClient.Connect($"http://127.0.0.1:{server.Port}");
        var woken = new List<ObjectKey>();
        var wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var wakeups = new OperationWakeups(k => { lock (woken) { woken.Add(k); } wake.TrySetResult(); }, NullLogger.Instance);

        var watch = wakeups.WakeWhenDone(agent, "op-1", Key);
        wakeups.WakeWhenDone(agent, "op-1", Key).ShouldBeSameAs(watch, "a requeued phase asks again: still one watch");
        await operation.Watched.Task.WaitAsync(TimeSpan.FromSeconds(30));
        wakeups.Watching.ShouldBe(1);
        wake.Task.IsCompleted.ShouldBeFalse("the operation is still running");

        operation.Finish();
        await wake.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await watch.WaitAsync(TimeSpan.FromSeconds(30));
        wakeups.Watching.ShouldBe(0);
        lock (woken)
        {
            woken.ShouldBe([Key]);
        }
        operation.Watches.ShouldBe(1);
    }

    [Fact]
    public async Task An_agent_without_WatchOperation_leaves_the_migration_to_its_poll()
    {
        await using var server = await WatchServer.StartAsync(operation: null);
        using var agent = AgentClient.Connect($"http://127.0.0.1:{server.Port}");
        var woken = 0;
        using var wakeups = new OperationWakeups(_ => Interlocked.Increment(ref woken), NullLogger.Instance);

        await wakeups.WakeWhenDone(agent, "op-1", Key).WaitAsync(TimeSpan.FromSeconds(30));
        server.Refused.Task.IsCompleted.ShouldBeTrue("the agent was asked and said Unimplemented");
        woken.ShouldBe(0);
        wakeups.Watching.ShouldBe(0);
    }

    /// <summary>An operation that runs until <see cref="Finish"/>; its watch sends it running, then done.</summary>
    private sealed class ControlledOperation
    {
        private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _watches;

        public TaskCompletionSource Watched { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Watches => Volatile.Read(ref _watches);

        public void Finish() => _finished.TrySetResult();

        public async Task WatchAsync(string id, IServerStreamWriter<Operation> stream, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _watches);
            await stream.WriteAsync(new Operation { OperationId = id, State = OperationState.OperationRunning }, cancellationToken);
            Watched.TrySetResult();
            await _finished.Task.WaitAsync(cancellationToken);
            await stream.WriteAsync(new Operation { OperationId = id, Done = true, State = OperationState.OperationSucceeded }, cancellationToken);
        }
    }

    private sealed class WatchService(ControlledOperation? operation, WatchServer server) : AgentService.AgentServiceBase
    {
        public override Task WatchOperation(GetOperationRequest request, IServerStreamWriter<Operation> responseStream, ServerCallContext context)
        {
            if (operation is null)
            {
                server.Refused.TrySetResult();
                throw new RpcException(new Status(StatusCode.Unimplemented, "an older agent"));
            }
            return operation.WatchAsync(request.OperationId, responseStream, context.CancellationToken);
        }
    }

    private sealed class WatchServer : IAsyncDisposable
    {
        private WebApplication? _app;

        public int Port { get; private init; }

        public TaskCompletionSource Refused { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public static async Task<WatchServer> StartAsync(ControlledOperation? operation)
        {
            var server = new WatchServer { Port = TestAgentLayout.FreePort() };
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpcTcp(new IPEndPoint(IPAddress.Loopback, server.Port)));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(new WatchService(operation, server));
            server._app = builder.Build();
            server._app.MapGrpcService<WatchService>();
            await server._app.StartAsync();
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app!.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
