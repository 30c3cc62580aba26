using PodMigrate.Core.IO;

namespace PodMigrate.Core.Codecs;

/// <summary>
/// Read-only zstd stream over ZSTD_decompressStream: compressed input goes through one pooled buffer,
/// decompressed output is written by libzstd straight into the caller's buffer. Accepts concatenated frames;
/// a stream that ends inside a frame is <see cref="InvalidDataException"/>.
/// </summary>
internal sealed class ZstdDecompressStream : Stream
{
    private readonly Stream _source;
    private readonly bool _leaveOpen;
    private readonly ZstdDecompressionContextHandle _context;
    private byte[]? _input;
    private int _inputStart;
    private int _inputEnd;
    // libzstd's last hint: 0 = at a frame boundary. Starts non-zero: an empty source is not a zstd stream.
    private nuint _frameRemaining = 1;
    // The last call filled the caller's buffer: libzstd may hold more output without needing input.
    private bool _outputPending;

    public ZstdDecompressStream(Stream source, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(source);
        _source = source;
        _leaveOpen = leaveOpen;
        _context = ZstdNative.CreateDecompressionContext();
        if (_context.IsInvalid)
        {
            throw new InvalidOperationException("ZSTD_createDCtx failed (out of memory?)");
        }

        _input = ArchiveBuffers.Pool.Rent((int)ZstdNative.DecompressStreamInSize());
    }

    public override bool CanRead => _input is not null;

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

            var read = _source.Read(input, 0, input.Length);
            if (!Refilled(read))
            {
                return 0;
            }
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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

            var read = await _source.ReadAsync(input, cancellationToken);
            if (!Refilled(read))
            {
                return 0;
            }
        }
    }

    public override void Flush()
    {
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is read-only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && _input is not null)
        {
            Release();
            if (!_leaveOpen)
            {
                _source.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (_input is not null)
        {
            Release();
            if (!_leaveOpen)
            {
                await _source.DisposeAsync();
            }
        }

        await base.DisposeAsync();
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
            _outputPending = outBuffer.Position == outBuffer.Size;
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

    private void Release()
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
