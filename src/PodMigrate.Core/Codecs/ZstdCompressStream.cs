using PodMigrate.Core.IO;

namespace PodMigrate.Core.Codecs;

/// <summary>
/// Write-only zstd stream over ZSTD_compressStream2: the caller's buffers go straight to libzstd, the
/// compressed output goes from one pooled buffer to the destination. Disposing ends the frame.
/// </summary>
internal sealed class ZstdCompressStream : WriteOnlyStream
{
    private readonly ZstdCompressionContextHandle _context;
    private byte[]? _output;
    private bool _ended;

    public ZstdCompressStream(Stream destination, int level, int workers, bool leaveOpen)
        : base(destination, leaveOpen)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(workers);
        _context = ZstdNative.CreateCompressionContext();
        if (_context.IsInvalid)
        {
            throw new InvalidOperationException("ZSTD_createCCtx failed (out of memory?)");
        }

        try
        {
            SetParameter(ZstdNative.CompressionLevelParameter, level);
            // A content checksum lets `zstd -d` (and we) detect corruption inside the frame, like the CLI's default.
            SetParameter(ZstdNative.ChecksumFlagParameter, 1);
            if (workers > 0)
            {
                SetParameter(ZstdNative.NbWorkersParameter, workers);
            }
        }
        catch
        {
            _context.Dispose();
            throw;
        }

        _output = ArchiveBuffers.Pool.Rent((int)ZstdNative.CompressStreamOutSize());
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var output = EnsureOpen();
        while (!buffer.IsEmpty)
        {
            var (consumed, produced, _) = Compress(buffer, ZstdNative.EndDirective.Continue);
            buffer = buffer[consumed..];
            Inner.Write(output, 0, produced);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var output = EnsureOpen();
        while (!buffer.IsEmpty)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (consumed, produced, _) = Compress(buffer.Span, ZstdNative.EndDirective.Continue);
            buffer = buffer[consumed..];
            if (produced > 0)
            {
                await Inner.WriteAsync(output.AsMemory(0, produced), cancellationToken);
            }
        }
    }

    /// <summary>Flushes what libzstd holds into complete blocks (costs ratio if done often).</summary>
    public override void Flush()
    {
        if (_output is null)
        {
            return;
        }

        Drain(ZstdNative.EndDirective.Flush);
        Inner.Flush();
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_output is null)
        {
            return;
        }

        await DrainAsync(ZstdNative.EndDirective.Flush, cancellationToken);
        await Inner.FlushAsync(cancellationToken);
    }

    /// <summary>Ends the frame and frees the context and the buffer (also when ending the frame fails).</summary>
    protected override void ReleaseCore()
    {
        try
        {
            if (!_ended)
            {
                _ended = true;
                Drain(ZstdNative.EndDirective.End);
            }
        }
        finally
        {
            Release();
        }
    }

    protected override async ValueTask ReleaseCoreAsync()
    {
        try
        {
            if (!_ended)
            {
                _ended = true;
                await DrainAsync(ZstdNative.EndDirective.End, CancellationToken.None);
            }
        }
        finally
        {
            Release();
        }
    }

    private void Drain(ZstdNative.EndDirective directive)
    {
        var output = EnsureOpen();
        nuint remaining;
        do
        {
            (_, var produced, remaining) = Compress([], directive);
            Inner.Write(output, 0, produced);
        }
        while (remaining != 0);
    }

    private async Task DrainAsync(ZstdNative.EndDirective directive, CancellationToken cancellationToken)
    {
        var output = EnsureOpen();
        nuint remaining;
        do
        {
            (_, var produced, remaining) = Compress([], directive);
            if (produced > 0)
            {
                await Inner.WriteAsync(output.AsMemory(0, produced), cancellationToken);
            }
        }
        while (remaining != 0);
    }

    private unsafe (int Consumed, int Produced, nuint Remaining) Compress(ReadOnlySpan<byte> input, ZstdNative.EndDirective directive)
    {
        var output = EnsureOpen();
        fixed (byte* source = input)
        fixed (byte* destination = output)
        {
            var inBuffer = new ZstdNative.InBuffer { Source = source, Size = (nuint)input.Length };
            var outBuffer = new ZstdNative.OutBuffer { Destination = destination, Size = (nuint)output.Length };
            var remaining = ZstdNative.Check(
                ZstdNative.CompressStream2(_context, &outBuffer, &inBuffer, directive),
                error => new IOException($"zstd compression failed: {error}"));
            return ((int)inBuffer.Position, (int)outBuffer.Position, remaining);
        }
    }

    private void SetParameter(int parameter, int value)
        => ZstdNative.Check(
            ZstdNative.SetParameter(_context, parameter, value),
            error => new ArgumentOutOfRangeException(nameof(value), value, $"zstd parameter {parameter}: {error}"));

    private byte[] EnsureOpen()
    {
        ObjectDisposedException.ThrowIf(_output is null, this);
        return _output;
    }

    private void Release()
    {
        _context.Dispose();
        var output = _output;
        _output = null;
        if (output is not null)
        {
            ArchiveBuffers.Pool.Return(output);
        }
    }
}
