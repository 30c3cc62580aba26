namespace PodMigrate.Core.IO;

/// <summary>
/// The base of the project's forward-only streams over another stream (the codecs, the hashing pipes): no seeking, no
/// length, and the one disposal they all need: the stream's own resources first (<see cref="ReleaseCore"/>), then the
/// inner stream unless it is left open, once. <see cref="ReadOnlyStream"/> and <see cref="WriteOnlyStream"/> add a
/// direction.
/// </summary>
public abstract class OneWayStream(Stream inner, bool leaveOpen) : Stream
{
    /// <summary>The stream this one reads from or writes to.</summary>
    protected Stream Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    protected bool IsDisposed { get; private set; }

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Frees what this stream holds itself (pooled buffers, native contexts, its task); runs once, before the inner stream is disposed.</summary>
    protected virtual void ReleaseCore()
    {
    }

    /// <summary>The asynchronous <see cref="ReleaseCore"/>; by default the synchronous one.</summary>
    protected virtual ValueTask ReleaseCoreAsync()
    {
        ReleaseCore();
        return ValueTask.CompletedTask;
    }

    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(IsDisposed, this);

    protected override void Dispose(bool disposing)
    {
        if (disposing && !IsDisposed)
        {
            IsDisposed = true;
            try
            {
                ReleaseCore();
            }
            finally
            {
                if (!leaveOpen)
                {
                    Inner.Dispose();
                }
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!IsDisposed)
        {
            IsDisposed = true;
            try
            {
                await ReleaseCoreAsync();
            }
            finally
            {
                if (!leaveOpen)
                {
                    await Inner.DisposeAsync();
                }
            }
        }

        await base.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A <see cref="OneWayStream"/> that reads: derived types implement the span and memory reads.</summary>
internal abstract class ReadOnlyStream(Stream inner, bool leaveOpen) : OneWayStream(inner, leaveOpen)
{
    public override bool CanRead => !IsDisposed;

    public override bool CanWrite => false;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public abstract override int Read(Span<byte> buffer);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is read-only");
}

/// <summary>A <see cref="OneWayStream"/> that writes: derived types implement the span and memory writes; a flush goes to the inner stream.</summary>
internal abstract class WriteOnlyStream(Stream inner, bool leaveOpen) : OneWayStream(inner, leaveOpen)
{
    public override bool CanRead => false;

    public override bool CanWrite => !IsDisposed;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public abstract override void Write(ReadOnlySpan<byte> buffer);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public abstract override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default);

    public override void Flush()
    {
        if (!IsDisposed)
        {
            Inner.Flush();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => IsDisposed ? Task.CompletedTask : Inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is write-only");
}
