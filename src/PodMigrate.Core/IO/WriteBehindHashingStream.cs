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
/// On a file, with <c>startWriteback</c>, the writeback of each chunk is started as soon as it is written, so that the
/// caller's fsync at the end waits for the tail only instead of the whole file (the kernel would otherwise hold it all
/// dirty until then); the writes then go at the disk's pace. Without it they go at the page cache's, and the caller's
/// fsync later pays for the disk (a checkpoint sealed before it is durable).
/// </summary>
internal sealed class WriteBehindHashingStream : WriteOnlyStream
{
    private readonly int _chunkSize;
    private readonly ChunkChannel _chunks;
    private readonly SafeFileHandle? _file;
    private readonly long _fileOffset;
    private byte[]? _current;
    private int _currentCount;
    private bool _completed;
    private string? _sha256;
    private Exception? _failure;

    public WriteBehindHashingStream(Stream destination, int chunkSize, int depth, bool leaveOpen, bool startWriteback = true)
        : base(destination, leaveOpen)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        _chunkSize = chunkSize;
        _chunks = new ChunkChannel(depth);
        // Taken now, while nothing is buffered in the FileStream: its getter flushes, which must not race the consumer.
        if (startWriteback && destination is FileStream { CanSeek: true } file && OperatingSystem.IsLinux())
        {
            _file = file.SafeFileHandle;
            _fileOffset = file.Position;
        }

        _chunks.Start(ConsumeAsync);
    }

    /// <summary>Bytes written to this stream so far (all of them are in the destination once completed).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Lowercase hex sha256 of everything written; only after <see cref="CompleteAsync"/>.</summary>
    public string Sha256 => _sha256 ?? throw new InvalidOperationException("the stream has not been completed");

    public override bool CanWrite => !IsDisposed && !_completed;

    public override long Position
    {
        get => BytesWritten;
        set => throw new NotSupportedException();
    }

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
        await _chunks.Worker.WaitAsync(cancellationToken);
        ThrowIfFailed();
        await Inner.FlushAsync(cancellationToken);
    }

    protected override void ReleaseCore() => ReleaseCoreAsync().AsTask().GetAwaiter().GetResult();

    protected override async ValueTask ReleaseCoreAsync()
    {
        await _chunks.DisposeAsync();
        if (_current is not null)
        {
            ArchiveBuffers.Pool.Return(_current);
            _current = null;
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
        var chunk = new PooledChunk(_current!, _currentCount);
        _current = null;
        _currentCount = 0;
        try
        {
            await _chunks.Writer.WriteAsync(chunk, cancellationToken);
        }
        catch (Exception e) when (e is ChannelClosedException || cancellationToken.IsCancellationRequested)
        {
            chunk.Return();
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
                    await Inner.WriteAsync(chunk.Buffer.AsMemory(0, chunk.Count), cancellationToken);
                    if (_file is not null)
                    {
                        _ = LibC.SyncFileRange(_file, offset, chunk.Count, LibC.SYNC_FILE_RANGE_WRITE);
                        offset += chunk.Count;
                    }
                }
                finally
                {
                    chunk.Return();
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
        ThrowIfDisposed();
        if (_completed)
        {
            throw new InvalidOperationException("the stream has been completed");
        }

        ThrowIfFailed();
    }
}
