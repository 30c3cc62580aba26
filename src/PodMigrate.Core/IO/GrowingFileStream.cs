using PodMigrate.Core.Errors;

namespace PodMigrate.Core.IO;

/// <summary>
/// Reads a file that another writer is still appending to (an archive being published on the share), forward only: at
/// the current end it waits for more bytes until <paramref name="finalLength"/> says how long the file is once its
/// writer is done (the published manifest's size), and it fails when <paramref name="stillWriting"/> says the writer gave
/// up (its partial directory was removed without a publication). What it reads is unverified: the caller checks the
/// whole against the published manifest before anything uses it.
/// </summary>
public sealed class GrowingFileStream(Stream file, Func<long?> finalLength, Func<bool> stillWriting, string subject, TimeProvider time) : Stream
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(10);
    private long _position;
    private long? _final;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException("the file is still growing");

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            var limit = _final is { } final ? (int)Math.Min(buffer.Length, final - _position) : buffer.Length;
            if (limit <= 0)
            {
                return 0;
            }
            var read = await file.ReadAsync(buffer[..limit], cancellationToken);
            if (read > 0)
            {
                _position += read;
                return read;
            }
            if (_final is null)
            {
                // The writer's end is known only from its publication; a writer that removed its files gave up.
                var writing = stillWriting();
                _final = finalLength();
                if (_final is { } length && length < _position)
                {
                    throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {subject}: read {_position} bytes of an archive published as {length}");
                }
                if (_final is null && !writing)
                {
                    throw new PodMigrateException(ErrorKind.Aborted, $"checkpoint {subject}: its publication was abandoned while the archive was being read");
                }
                if (_final is not null)
                {
                    continue;
                }
            }
            await Task.Delay(Poll, time, cancellationToken);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
        => throw new NotSupportedException("a growing file is read asynchronously");

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            file.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await file.DisposeAsync();
        await base.DisposeAsync();
    }
}
