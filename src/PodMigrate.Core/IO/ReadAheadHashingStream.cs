using System.Security.Cryptography;

namespace PodMigrate.Core.IO;

/// <summary>
/// Reads a file ahead of its consumer on a task of its own, hashing each chunk there, so reading and sha256 overlap
/// with whatever the consumer does with the bytes (compressing them). At most <c>depth</c> pooled chunks are in flight.
/// Like <see cref="HashingStream"/> as a reader it reports the source's Length and its own Position (TarWriter sizes an
/// entry from them) and only moves forward. <see cref="Sha256"/> is known once the consumer has read to the end.
/// </summary>
internal sealed class ReadAheadHashingStream : ReadOnlyStream
{
    private readonly ChunkChannel _chunks;
    private readonly long _length;
    private readonly bool _hash;
    private PooledChunk _current;
    private int _currentOffset;
    private bool _ended;
    private string? _sha256;

    public ReadAheadHashingStream(Stream source, int chunkSize, int depth, bool leaveOpen = false, bool hash = true)
        : base(source, leaveOpen)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        // A source without a length (a pipe) is read all the same; only TarWriter needs to know it.
        _length = source.CanSeek ? source.Length : -1;
        _hash = hash;
        _chunks = new ChunkChannel(depth);
        _chunks.Start(cancellationToken => ProduceAsync(chunkSize, cancellationToken));
    }

    /// <summary>Bytes handed to the consumer so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Lowercase hex sha256 of the whole source; only after the consumer has read to the end.</summary>
    public string Sha256 => _hash
        ? _sha256 ?? throw new InvalidOperationException("the stream has not been read to its end")
        : throw new InvalidOperationException("this stream reads ahead without hashing");

    public override bool CanSeek => !IsDisposed && _length >= 0;

    public override long Length => _length >= 0 ? _length : throw new NotSupportedException("the source has no length");

    public override long Position
    {
        get => BytesRead;
        set => ForwardOnly.MoveTo(BytesRead, value);
    }

    // A source without a length cannot seek from its end: Length throws.
    public override long Seek(long offset, SeekOrigin origin) => ForwardOnly.Seek(BytesRead, () => Length, offset, origin);

    public override int Read(Span<byte> buffer)
    {
        if (!EnsureChunk() && !WaitForChunkAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult())
        {
            return 0;
        }

        return Take(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!EnsureChunk() && !await WaitForChunkAsync(cancellationToken))
        {
            return 0;
        }

        return Take(buffer.Span);
    }

    protected override void ReleaseCore() => ReleaseCoreAsync().AsTask().GetAwaiter().GetResult();

    protected override async ValueTask ReleaseCoreAsync()
    {
        await _chunks.DisposeAsync();
        _current.Return();
        _current = default;
    }

    // Never throws: a failure completes the channel, and so reaches the reader as the exception it is.
    private async Task ProduceAsync(int chunkSize, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            while (true)
            {
                var buffer = ArchiveBuffers.Pool.Rent(chunkSize);
                var filled = 0;
                try
                {
                    // Full chunks keep the consumer's per-chunk overhead low; a short read is not the end of a file.
                    int read;
                    while (filled < chunkSize && (read = await Inner.ReadAsync(buffer.AsMemory(filled, chunkSize - filled), cancellationToken)) > 0)
                    {
                        filled += read;
                    }

                    if (filled == 0)
                    {
                        ArchiveBuffers.Pool.Return(buffer);
                        break;
                    }

                    if (_hash)
                    {
                        hash.AppendData(buffer, 0, filled);
                    }
                    await _chunks.Writer.WriteAsync(new PooledChunk(buffer, filled), cancellationToken);
                }
                catch
                {
                    ArchiveBuffers.Pool.Return(buffer);
                    throw;
                }
            }

            _sha256 = _hash ? Convert.ToHexStringLower(hash.GetHashAndReset()) : "";
            _chunks.Writer.Complete();
        }
        catch (Exception e)
        {
            _chunks.Writer.TryComplete(e);
        }
    }

    private bool EnsureChunk()
    {
        ThrowIfDisposed();
        if (_current.Buffer is not null && _currentOffset < _current.Count)
        {
            return true;
        }

        _current.Return();
        _current = default;
        if (_chunks.Reader.TryRead(out var next))
        {
            _current = next;
            _currentOffset = 0;
            return true;
        }

        return false;
    }

    private async ValueTask<bool> WaitForChunkAsync(CancellationToken cancellationToken)
    {
        if (_ended)
        {
            return false;
        }

        // WaitToReadAsync throws the producer's own exception (an IOException stays one) when it completed the channel with it.
        while (await _chunks.Reader.WaitToReadAsync(cancellationToken))
        {
            if (EnsureChunk())
            {
                return true;
            }
        }

        _ended = true;
        return false;
    }

    private int Take(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _current.Count - _currentOffset);
        _current.Buffer.AsSpan(_currentOffset, count).CopyTo(destination);
        _currentOffset += count;
        BytesRead += count;
        return count;
    }
}
