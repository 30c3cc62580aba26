using System.Security.Cryptography;
using System.Threading.Channels;

namespace PodMigrate.Core.IO;

/// <summary>
/// A sha256 computed on a task of its own: <see cref="AppendAsync"/> copies the bytes into a pooled chunk and queues it
/// (at most <c>depth</c> chunks wait), so the caller's thread goes on decompressing and writing while the hash runs on
/// the other core. <see cref="CompleteAsync"/> gives the lowercase hex digest once every queued chunk is hashed.
/// </summary>
internal sealed class BackgroundSha256 : IAsyncDisposable
{
    private readonly Channel<(byte[] Buffer, int Count)> _chunks;
    private readonly Task<string> _hashing;
    private bool _completed;

    public BackgroundSha256(int depth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        _chunks = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true });
        _hashing = Task.Run(HashAsync);
    }

    /// <summary>Bytes appended so far.</summary>
    public long BytesAppended { get; private set; }

    public async ValueTask AppendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (data.IsEmpty)
        {
            return;
        }

        var buffer = ArchiveBuffers.Pool.Rent(data.Length);
        data.CopyTo(buffer);
        try
        {
            await _chunks.Writer.WriteAsync((buffer, data.Length), cancellationToken);
        }
        catch
        {
            ArchiveBuffers.Pool.Return(buffer);
            throw;
        }
        BytesAppended += data.Length;
    }

    /// <summary>The digest of everything appended; no appending after this.</summary>
    public Task<string> CompleteAsync()
    {
        _completed = true;
        _chunks.Writer.TryComplete();
        return _hashing;
    }

    public async ValueTask DisposeAsync()
    {
        _completed = true;
        _chunks.Writer.TryComplete();
        await _hashing;
    }

    private async Task<string> HashAsync()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await foreach (var (buffer, count) in _chunks.Reader.ReadAllAsync())
        {
            hash.AppendData(buffer, 0, count);
            ArchiveBuffers.Pool.Return(buffer);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
