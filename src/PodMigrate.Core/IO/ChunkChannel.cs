using System.Threading.Channels;

namespace PodMigrate.Core.IO;

/// <summary>
/// The bounded channel of pooled chunks between a pipelined hashing stream (<see cref="ReadAheadHashingStream"/>,
/// <see cref="WriteBehindHashingStream"/>) and the task of its own on the far side, and how that task is stopped.
/// </summary>
internal sealed class ChunkChannel : IDisposable, IAsyncDisposable
{
    private readonly Channel<PooledChunk> _chunks;
    private readonly CancellationTokenSource _stop = new();
    private Task _worker = Task.CompletedTask;

    public ChunkChannel(int depth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        _chunks = Channel.CreateBounded<PooledChunk>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true });
    }

    public ChannelReader<PooledChunk> Reader => _chunks.Reader;

    public ChannelWriter<PooledChunk> Writer => _chunks.Writer;

    /// <summary>The task started by <see cref="Start"/>.</summary>
    public Task Worker => _worker;

    /// <summary>Runs <paramref name="work"/> on the thread pool with the token disposing cancels.</summary>
    public void Start(Func<CancellationToken, Task> work) => _worker = Task.Run(() => work(_stop.Token));

    /// <summary>Cancels the task, closes the channel, waits for the task, and returns every chunk still queued to the pool.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <inheritdoc cref="Dispose"/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _chunks.Writer.TryComplete();
        await _worker;
        while (_chunks.Reader.TryRead(out var chunk))
        {
            chunk.Return();
        }

        _stop.Dispose();
    }
}

/// <summary>The first <see cref="Count"/> bytes of a buffer rented from <see cref="ArchiveBuffers.Pool"/>; the default holds none.</summary>
internal readonly record struct PooledChunk(byte[] Buffer, int Count)
{
    public void Return()
    {
        if (Buffer is not null)
        {
            ArchiveBuffers.Pool.Return(Buffer);
        }
    }
}
