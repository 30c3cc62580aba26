using System.Buffers.Binary;
using System.IO.Compression;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Codecs;

/// <summary>
/// GZipStream decompression that notices truncation: GZipStream ends quietly when its source stops inside a member,
/// so at the end this checks the member trailer's ISIZE (length mod 2^32) against the bytes produced. That holds for
/// the single-member streams PodMigrate, gzip and pigz write; a multi-member stream is refused as well.
/// </summary>
internal sealed class GzipDecompressStream : ReadOnlyStream
{
    private readonly TailTrackingStream _source;
    private long _produced;
    private bool _ended;

    public GzipDecompressStream(Stream source, bool leaveOpen)
        : this(new TailTrackingStream(source, leaveOpen))
    {
    }

    // The GZipStream is the inner stream and owns the tail tracker, which leaves the caller's source open or not.
    private GzipDecompressStream(TailTrackingStream source)
        : base(new GZipStream(source, CompressionMode.Decompress, leaveOpen: false), leaveOpen: false)
    {
        _source = source;
    }

    public override int Read(Span<byte> buffer) => Count(Inner.Read(buffer), buffer.IsEmpty);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        => Count(await Inner.ReadAsync(buffer, cancellationToken), buffer.IsEmpty);

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
    private sealed class TailTrackingStream(Stream inner, bool leaveOpen) : ReadOnlyStream(inner, leaveOpen)
    {
        private readonly byte[] _tail = new byte[8];

        public long TotalRead { get; private set; }

        public ReadOnlySpan<byte> Tail => _tail;

        public override int Read(Span<byte> buffer)
        {
            var read = Inner.Read(buffer);
            Remember(buffer[..read]);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await Inner.ReadAsync(buffer, cancellationToken);
            Remember(buffer.Span[..read]);
            return read;
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
