using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Win32.SafeHandles;
using PodMigrate.Core.Interop;

namespace PodMigrate.Core.IO;

/// <summary>
/// Collects writes into pooled chunks that a task of its own hashes (sha256) and writes to the destination, so the
/// producer (a compressor) keeps working while the previous chunks are hashed and written. At most <c>depth</c> full
/// chunks wait. <see cref="CompleteAsync"/> writes the rest and returns once everything is in the destination;
/// disposing without completing discards what is not written yet (an abandoned archive). A failure of the
/// destination (ENOSPC) is rethrown as is to the next write or to <see cref="CompleteAsync"/>.
/// On a file, the writeback of each chunk is started as soon as it is written, so that the caller's fsync at the end
/// waits for the tail only instead of the whole file (the kernel would otherwise hold it all dirty until then).
/// </summary>
internal sealed class WriteBehindHashingStream : Stream
{
    private readonly Stream _destination;
    private readonly bool _leaveOpen;
    private readonly int _chunkSize;
    private readonly Channel<Chunk> _chunks;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _consumer;
    private readonly SafeFileHandle? _file;
    private readonly long _fileOffset;
    private byte[]? _current;
    private int _currentCount;
    private bool _completed;
    private bool _disposed;
    private string? _sha256;
    private Exception? _failure;

    public WriteBehindHashingStream(Stream destination, int chunkSize, int depth, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        _destination = destination;
        _leaveOpen = leaveOpen;
        _chunkSize = chunkSize;
        _chunks = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(depth) { SingleReader = true, SingleWriter = true });
        // Taken now, while nothing is buffered in the FileStream: its getter flushes, which must not race the consumer.
        if (destination is FileStream { CanSeek: true } file && OperatingSystem.IsLinux())
        {
            _file = file.SafeFileHandle;
            _fileOffset = file.Position;
        }

        _consumer = Task.Run(() => ConsumeAsync(_stop.Token));
    }

    /// <summary>Bytes written to this stream so far (all of them are in the destination once completed).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Lowercase hex sha256 of everything written; only after <see cref="CompleteAsync"/>.</summary>
    public string Sha256 => _sha256 ?? throw new InvalidOperationException("the stream has not been completed");

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_disposed && !_completed;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => BytesWritten;
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureWritable();
        while (!buffer.IsEmpty)
        {
            buffer = buffer[Append(buffer)..];
            if (_currentCount == _chunkSize)
            {
                PostAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
            }
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        while (!buffer.IsEmpty)
        {
            buffer = buffer[Append(buffer.Span)..];
            if (_currentCount == _chunkSize)
            {
                await PostAsync(cancellationToken);
            }
        }
    }

    /// <summary>Nothing to do: a flush in the middle would only make chunks smaller; <see cref="CompleteAsync"/> is the flush.</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Writes what is left, waits until the destination has everything (and is flushed), and fixes the digest.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        EnsureWritable();
        _completed = true;
        if (_currentCount > 0)
        {
            await PostAsync(cancellationToken);
        }

        _chunks.Writer.TryComplete();
        await _consumer.WaitAsync(cancellationToken);
        ThrowIfFailed();
        await _destination.FlushAsync(cancellationToken);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is write-only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReleaseAsync().AsTask().GetAwaiter().GetResult();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await ReleaseAsync();
        await base.DisposeAsync();
    }

    private async ValueTask ReleaseAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            await _stop.CancelAsync();
            _chunks.Writer.TryComplete();
            await _consumer;
            while (_chunks.Reader.TryRead(out var chunk))
            {
                ArchiveBuffers.Pool.Return(chunk.Buffer);
            }

            if (_current is not null)
            {
                ArchiveBuffers.Pool.Return(_current);
                _current = null;
            }

            _stop.Dispose();
            if (!_leaveOpen)
            {
                await _destination.DisposeAsync();
            }
        }
    }

    private int Append(ReadOnlySpan<byte> bytes)
    {
        _current ??= ArchiveBuffers.Pool.Rent(_chunkSize);
        var count = Math.Min(bytes.Length, _chunkSize - _currentCount);
        bytes[..count].CopyTo(_current.AsSpan(_currentCount));
        _currentCount += count;
        BytesWritten += count;
        return count;
    }

    private async ValueTask PostAsync(CancellationToken cancellationToken)
    {
        var chunk = new Chunk(_current!, _currentCount);
        _current = null;
        _currentCount = 0;
        try
        {
            await _chunks.Writer.WriteAsync(chunk, cancellationToken);
        }
        catch (Exception e) when (e is ChannelClosedException || cancellationToken.IsCancellationRequested)
        {
            ArchiveBuffers.Pool.Return(chunk.Buffer);
            ThrowIfFailed();
            throw;
        }
    }

    // Never throws: a failure is kept for the producer, and the channel is closed so that it stops waiting for room.
    private async Task ConsumeAsync(CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var offset = _fileOffset;
        try
        {
            await foreach (var chunk in _chunks.Reader.ReadAllAsync(cancellationToken))
            {
                try
                {
                    hash.AppendData(chunk.Buffer, 0, chunk.Count);
                    await _destination.WriteAsync(chunk.Buffer.AsMemory(0, chunk.Count), cancellationToken);
                    if (_file is not null)
                    {
                        _ = LibC.SyncFileRange(_file, offset, chunk.Count, LibC.SYNC_FILE_RANGE_WRITE);
                        offset += chunk.Count;
                    }
                }
                finally
                {
                    ArchiveBuffers.Pool.Return(chunk.Buffer);
                }
            }

            _sha256 = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        catch (Exception e)
        {
            _failure = e;
            _chunks.Writer.TryComplete(e);
        }
    }

    private void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    private void EnsureWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_completed)
        {
            throw new InvalidOperationException("the stream has been completed");
        }

        ThrowIfFailed();
    }

    private readonly record struct Chunk(byte[] Buffer, int Count);
}
