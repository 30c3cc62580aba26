namespace PodMigrate.Core.IO;

/// <summary>
/// Writes through to an inner stream, forward only, while <see cref="BackgroundSha256"/> hashes what was written on
/// another core (e.g. the uncompressed digest of a layer that a compressor downstream turns into other bytes).
/// The inner stream is left open.
/// </summary>
internal sealed class BackgroundHashingWriter(Stream inner, int depth) : Stream
{
    private readonly BackgroundSha256 _hash = new(depth);
    private bool _disposed;

    /// <summary>Bytes written through so far.</summary>
    public long BytesWritten => _hash.BytesAppended;

    /// <summary>The sha256 of everything written; nothing may be written after this.</summary>
    public Task<string> CompleteAsync() => _hash.CompleteAsync();

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_disposed;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => BytesWritten;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count)
        => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await inner.WriteAsync(buffer, cancellationToken);
        await _hash.AppendAsync(buffer, cancellationToken);
    }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is write-only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _hash.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _hash.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}
