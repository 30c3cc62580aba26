using Google.Protobuf.Reflection;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tests.Grpc.TestProto;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>Why a Hang call's token fired, as the server saw it.</summary>
/// <param name="DeadlinePassed">The token fired at the deadline (within timer granularity), not before it.</param>
internal sealed record HangOutcome(DateTime Deadline, bool DeadlinePassed);

/// <summary>The test service's handlers, with barriers the tests use to observe the server side.</summary>
internal sealed class TestService
{
    public static readonly ServiceDescriptor Descriptor = GrpcTestReflection.Descriptor.Services[0];
    public static readonly Method<EchoRequest, EchoReply> Echo = Method.FromDescriptor<EchoRequest, EchoReply>(Descriptor, "Echo");
    public static readonly Method<CountRequest, CountReply> Count = Method.FromDescriptor<CountRequest, CountReply>(Descriptor, "Count");
    public static readonly Method<FailRequest, EchoReply> Fail = Method.FromDescriptor<FailRequest, EchoReply>(Descriptor, "Fail");
    public static readonly Method<EchoRequest, EchoReply> Hang = Method.FromDescriptor<EchoRequest, EchoReply>(Descriptor, "Hang");

    /// <summary>Lets a Count call with wait_for_release go on after its first message.</summary>
    public TaskCompletionSource StreamRelease { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when the first Count call has finished writing all its messages.</summary>
    public TaskCompletionSource StreamFinished { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set when a Count call's token fired (the client went away or the deadline passed).</summary>
    public TaskCompletionSource StreamCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource HangStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource<HangOutcome> HangEnded { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Runs at the start of each Fail call.</summary>
    public Action? BeforeFail { get; set; }

    public GrpcServiceDefinition Definition() => new GrpcServiceDefinition(Descriptor.FullName)
        .AddUnary(Echo, EchoAsync)
        .AddServerStreaming(Count, CountAsync)
        .AddUnary(Fail, FailAsync)
        .AddUnary(Hang, HangAsync);

    private static Task<EchoReply> EchoAsync(EchoRequest request, ServerCallContext context)
    {
        var requestId = context.RequestHeaders.GetValue("x-request-id") ?? "";
        context.ResponseTrailers.Add("x-echo-request-id", requestId);
        return Task.FromResult(new EchoReply { Text = request.Text, Peer = context.Peer, RequestId = requestId });
    }

    private async Task CountAsync(CountRequest request, IServerStreamWriter<CountReply> stream, ServerCallContext context)
    {
        for (var n = 1; n <= request.Count; n++)
        {
            if (request.HasFailAfter && n > request.FailAfter)
            {
                throw new RpcException(new Status(StatusCode.DataLoss, $"stream broke after {request.FailAfter} messages"));
            }
            await stream.WriteAsync(new CountReply { N = n }, context.CancellationToken);
            if (n == 1 && request.WaitForRelease)
            {
                try
                {
                    await StreamRelease.Task.WaitAsync(context.CancellationToken);
                }
                catch (OperationCanceledException)
                {
                    StreamCancelled.TrySetResult();
                    throw;
                }
            }
        }
        if (request.HasFailAfter && request.FailAfter >= request.Count)
        {
            throw new RpcException(new Status(StatusCode.DataLoss, $"stream broke after {request.FailAfter} messages"));
        }
        StreamFinished.TrySetResult();
    }

    private Task<EchoReply> FailAsync(FailRequest request, ServerCallContext context)
    {
        BeforeFail?.Invoke();
        if (request.ThrowUnhandled)
        {
            throw new InvalidOperationException("secret internal detail");
        }
        if (request.ThrowTyped)
        {
            throw PodMigrateException.NotFound($"checkpoint {request.Message} not found");
        }
        context.ResponseTrailers.Add("x-failure-id", "f-42");
        throw new RpcException(new Status((StatusCode)request.Code, request.Message));
    }

    private async Task<EchoReply> HangAsync(EchoRequest request, ServerCallContext context)
    {
        HangStarted.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        }
        catch (OperationCanceledException)
        {
            // .NET timers may fire a millisecond or so before the wall clock reaches the deadline.
            var now = TimeProvider.System.GetUtcNow().UtcDateTime;
            HangEnded.TrySetResult(new HangOutcome(context.Deadline, context.Deadline != DateTime.MaxValue && now >= context.Deadline.AddMilliseconds(-20)));
            throw;
        }
        return new EchoReply { Text = request.Text };
    }
}
