namespace PodMigrate.Core.IO;

/// <summary>
/// Reads through to an inner stream, forward only, while <see cref="BackgroundSha256"/> hashes what was read on another
/// core. Like <see cref="HashingStream"/> as a reader it reports the inner stream's Length and Position (TarWriter
/// sizes an entry from them). The inner stream is left open.
/// </summary>
internal sealed class BackgroundHashingReader(Stream inner, int depth) : Stream
{
    private readonly BackgroundSha256 _hash = new(depth);
    private bool _disposed;

    /// <summary>Bytes read through so far.</summary>
    public long BytesRead => _hash.BytesAppended;

    /// <summary>The sha256 of everything read; the stream reads no more after this.</summary>
    public Task<string> CompleteAsync() => _hash.CompleteAsync();

    public override bool CanRead => !_disposed;

    public override bool CanSeek => !_disposed && inner.CanSeek;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set
        {
            if (value != Position)
            {
                throw new NotSupportedException("a hashing stream only moves forward");
            }
        }
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => Position + offset,
            _ => Length + offset,
        };
        Position = target;
        return target;
    }

    public override int Read(byte[] buffer, int offset, int count)
        => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var read = await inner.ReadAsync(buffer, cancellationToken);
        await _hash.AppendAsync(buffer[..read], cancellationToken);
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
