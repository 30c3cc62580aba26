namespace PodMigrate.Core.IO;

/// <summary>
/// Reads through to an inner stream, forward only, counting, while <see cref="BackgroundSha256"/> hashes what was read on
/// another core (or nothing is hashed, with <c>hash: false</c>). Like <see cref="HashingStream"/> as a reader it reports
/// the inner stream's Length and Position (TarWriter sizes an entry from them). The inner stream is left open.
/// </summary>
internal sealed class BackgroundHashingReader(Stream inner, int depth, bool hash = true) : Stream
{
    private readonly BackgroundSha256? _hash = hash ? new(depth) : null;
    private bool _disposed;

    /// <summary>Bytes read through so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Whether <see cref="CompleteAsync"/> gives a digest.</summary>
    public bool Hashes => _hash is not null;

    /// <summary>The sha256 of everything read; the stream reads no more after this.</summary>
    public Task<string> CompleteAsync()
        => _hash?.CompleteAsync() ?? throw new InvalidOperationException("this stream counts without hashing");

    public override bool CanRead => !_disposed;

    public override bool CanSeek => !_disposed && inner.CanSeek;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => ForwardOnly.MoveTo(Position, value);
    }

    public override long Seek(long offset, SeekOrigin origin) => ForwardOnly.Seek(Position, () => Length, offset, origin);

    public override int Read(byte[] buffer, int offset, int count)
        => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var read = await inner.ReadAsync(buffer, cancellationToken);
        if (_hash is not null)
        {
            await _hash.AppendAsync(buffer[..read], cancellationToken);
        }
        BytesRead += read;
        return read;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is read-only");

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _hash?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            if (_hash is not null)
            {
                await _hash.DisposeAsync();
            }
        }
        await base.DisposeAsync();
    }
}
