using PodMigrate.Core.IO;

namespace PodMigrate.Core.Codecs;

/// <summary>
/// Read-only zstd stream over ZSTD_decompressStream: compressed input goes through one pooled buffer,
/// decompressed output is written by libzstd straight into the caller's buffer. Accepts concatenated frames;
/// a stream that ends inside a frame is <see cref="InvalidDataException"/>.
/// </summary>
internal sealed class ZstdDecompressStream : ReadOnlyStream
{
    private readonly ZstdDecompressionContextHandle _context;
    private byte[]? _input;
    private int _inputStart;
    private int _inputEnd;
    // libzstd's last hint: 0 = at a frame boundary. Starts non-zero: an empty source is not a zstd stream.
    private nuint _frameRemaining = 1;
    // The last call filled the caller's buffer: libzstd may hold more output without needing input.
    private bool _outputPending;

    public ZstdDecompressStream(Stream source, bool leaveOpen)
        : base(source, leaveOpen)
    {
        _context = ZstdNative.CreateDecompressionContext();
        if (_context.IsInvalid)
        {
            throw new InvalidOperationException("ZSTD_createDCtx failed (out of memory?)");
        }

        _input = ArchiveBuffers.Pool.Rent((int)ZstdNative.DecompressStreamInSize());
    }

    public override int Read(Span<byte> buffer)
    {
        var input = EnsureOpen();
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            if (TryDecompress(buffer, out var produced))
            {
                return produced;
            }

            var read = Inner.Read(input, 0, input.Length);
            if (!Refilled(read))
            {
                return 0;
            }
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var input = EnsureOpen();
        if (buffer.IsEmpty)
        {
            return 0;
        }

        while (true)
        {
            if (TryDecompress(buffer.Span, out var produced))
            {
                return produced;
            }

            var read = await Inner.ReadAsync(input, cancellationToken);
            if (!Refilled(read))
            {
                return 0;
            }
        }
    }

    /// <summary>Runs libzstd if it has input or pending output; true with the byte count when it produced any.</summary>
    private unsafe bool TryDecompress(Span<byte> destination, out int produced)
    {
        produced = 0;
        if (_inputStart == _inputEnd && !_outputPending)
        {
            return false;
        }

        var input = _input!;
        fixed (byte* source = input)
        fixed (byte* target = destination)
        {
            var inBuffer = new ZstdNative.InBuffer { Source = source + _inputStart, Size = (nuint)(_inputEnd - _inputStart) };
            var outBuffer = new ZstdNative.OutBuffer { Destination = target, Size = (nuint)destination.Length };
            _frameRemaining = ZstdNative.Check(
                ZstdNative.DecompressStream(_context, &outBuffer, &inBuffer),
                error => new InvalidDataException($"zstd stream is corrupt: {error}"));
            _inputStart += (int)inBuffer.Position;
            produced = (int)outBuffer.Position;
            // A 0 hint means the frame is decoded and flushed whole: nothing is pending, even if this filled the buffer
            // exactly (calling libzstd again without input would start a next frame and make a clean end look truncated).
            _outputPending = outBuffer.Position == outBuffer.Size && _frameRemaining != 0;
        }

        return produced > 0;
    }

    /// <summary>Takes <paramref name="read"/> new input bytes; false at a clean end of the source.</summary>
    private bool Refilled(int read)
    {
        if (read > 0)
        {
            _inputStart = 0;
            _inputEnd = read;
            return true;
        }

        return _frameRemaining == 0
            ? false
            : throw new InvalidDataException("zstd stream is truncated: the source ended inside a frame");
    }

    private byte[] EnsureOpen()
    {
        ObjectDisposedException.ThrowIf(_input is null, this);
        return _input;
    }

    protected override void ReleaseCore()
    {
        _context.Dispose();
        var input = _input;
        _input = null;
        if (input is not null)
        {
            ArchiveBuffers.Pool.Return(input);
        }
    }
}
