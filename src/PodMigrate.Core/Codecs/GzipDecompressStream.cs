using System.Buffers.Binary;
using System.IO.Compression;

namespace PodMigrate.Core.Codecs;

/// <summary>
/// GZipStream decompression that notices truncation: GZipStream ends quietly when its source stops inside a member,
/// so at the end this checks the member trailer's ISIZE (length mod 2^32) against the bytes produced. That holds for
/// the single-member streams PodMigrate, gzip and pigz write; a multi-member stream is refused as well.
/// </summary>
internal sealed class GzipDecompressStream : Stream
{
    private readonly TailTrackingStream _source;
    private readonly GZipStream _gzip;
    private long _produced;
    private bool _ended;

    public GzipDecompressStream(Stream source, bool leaveOpen)
    {
        _source = new TailTrackingStream(source, leaveOpen);
        _gzip = new GZipStream(_source, CompressionMode.Decompress, leaveOpen: false);
    }

    public override bool CanRead => _gzip.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) => Count(_gzip.Read(buffer), buffer.IsEmpty);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => Count(await _gzip.ReadAsync(buffer, cancellationToken), buffer.IsEmpty);

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is read-only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _gzip.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _gzip.DisposeAsync();
        await base.DisposeAsync();
    }

    private int Count(int read, bool emptyRequest)
    {
        if (read > 0 || emptyRequest || _ended)
        {
            _produced += read;
            return read;
        }

        _ended = true;
        if (_source.TotalRead == 0)
        {
            // GZipStream writes nothing at all for an empty input (DeflateStream finishes only a stream it was given
            // bytes for), so nothing is the empty payload. An archive cut to nothing still fails its digest and its tar.
            return 0;
        }
        if (_source.TotalRead < 18)
        {
            throw new InvalidDataException("gzip stream is truncated: shorter than a gzip header and trailer");
        }

        var size = BinaryPrimitives.ReadUInt32LittleEndian(_source.Tail[4..]);
        if (size != (uint)_produced)
        {
            throw new InvalidDataException(
                $"gzip stream is truncated (or has several members): {_produced} bytes decompressed, the trailer says {size} mod 2^32");
        }

        return 0;
    }

    /// <summary>Remembers the last 8 bytes read (a gzip trailer: CRC32 and ISIZE).</summary>
    private sealed class TailTrackingStream(Stream inner, bool leaveOpen) : Stream
    {
        private readonly byte[] _tail = new byte[8];

        public long TotalRead { get; private set; }

        public ReadOnlySpan<byte> Tail => _tail;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Remember(buffer[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken);
            Remember(buffer.Span[..read]);
            return read;
        }

        public override void Flush()
        {
        }

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing && !leaveOpen)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            if (!leaveOpen)
            {
                await inner.DisposeAsync();
            }

            await base.DisposeAsync();
        }

        private void Remember(ReadOnlySpan<byte> bytes)
        {
            TotalRead += bytes.Length;
            if (bytes.Length >= _tail.Length)
            {
                bytes[^_tail.Length..].CopyTo(_tail);
                return;
            }

            // Shift the old tail left and append the new bytes.
            _tail.AsSpan(bytes.Length).CopyTo(_tail);
            bytes.CopyTo(_tail.AsSpan(_tail.Length - bytes.Length));
        }
    }
}
