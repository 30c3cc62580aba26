using System.Threading.Channels;
using PodMigrate.Agent.V1;
using Grpc.Core;

namespace PodMigrate.Agent.Services;

/// <summary>
/// Runs an operation that reports progress and streams its events: progress goes through a small channel (the oldest
/// dropped when the client reads slowly: progress is advisory and must never stall the operation), written by one pump,
/// then the result is the stream's last message.
/// </summary>
internal static class ProgressStreaming
{
    public static async Task RunAsync<TEvent, TResult>(
        IServerStreamWriter<TEvent> stream,
        Func<Action<Progress>, Task<TResult>> operation,
        Func<Progress, TEvent> progressEvent,
        Func<TResult, TEvent> resultEvent,
        CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<Progress>(new BoundedChannelOptions(32)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        var pump = PumpAsync(channel.Reader, stream, progressEvent, cancellationToken);
        TResult result;
        try
        {
            result = await operation(p => channel.Writer.TryWrite(p));
        }
        finally
        {
            channel.Writer.TryComplete();
            await pump;
        }
        await stream.WriteAsync(resultEvent(result), cancellationToken);
    }

    private static async Task PumpAsync<TEvent>(ChannelReader<Progress> reader, IServerStreamWriter<TEvent> stream, Func<Progress, TEvent> progressEvent, CancellationToken cancellationToken)
    {
        await foreach (var progress in reader.ReadAllAsync(cancellationToken))
        {
            await stream.WriteAsync(progressEvent(progress), cancellationToken);
        }
    }
}
