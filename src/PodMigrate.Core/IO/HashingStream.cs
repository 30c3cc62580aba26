using System.Security.Cryptography;

namespace PodMigrate.Core.IO;

/// <summary>
/// Passes bytes through in one direction while counting them and computing their sha256, so a blob is hashed in the
/// same pass that writes or reads it. As a reader it reports the inner stream's Length and Position (TarWriter needs
/// a seekable data stream to size an entry) but only reads forward.
/// </summary>
public sealed class HashingStream : OneWayStream
{
    private readonly bool _writing;
    private readonly bool _countOnly;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private string? _finalSha256;

    private HashingStream(Stream inner, bool writing, bool leaveOpen, bool countOnly = false)
        : base(inner, leaveOpen)
    {
        _writing = writing;
        _countOnly = countOnly;
    }

    /// <summary>Bytes passed through so far.</summary>
    public long BytesHashed { get; private set; }

    public static HashingStream ForReading(Stream inner, bool leaveOpen = false) => new(inner, writing: false, leaveOpen);

    public static HashingStream ForWriting(Stream inner, bool leaveOpen = false) => new(inner, writing: true, leaveOpen);

    /// <summary>
    /// A writer that only counts: where the bytes are already covered by other digests, a sha256 pass (~0.6 s/GiB
    /// here) buys nothing. <see cref="CurrentSha256"/> is not available on it.
    /// </summary>
    public static HashingStream CountingWrites(Stream inner, bool leaveOpen = false) => new(inner, writing: true, leaveOpen, countOnly: true);

    /// <summary>Lowercase hex sha256 of everything so far (the stream can keep going; still valid after disposal).</summary>
    public string CurrentSha256()
    {
        if (_countOnly)
        {
            throw new InvalidOperationException("this stream only counts bytes");
        }
        if (_finalSha256 is not null)
        {
            return _finalSha256;
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        _hash.GetCurrentHash(digest);
        return Convert.ToHexStringLower(digest);
    }

    public override bool CanRead => !IsDisposed && !_writing;

    public override bool CanWrite => !IsDisposed && _writing;

    public override bool CanSeek => !IsDisposed && !_writing && Inner.CanSeek;

    public override long Length => Inner.Length;

    public override long Position
    {
        get => _writing ? BytesHashed : Inner.Position;
        set => ForwardOnly.MoveTo(Position, value);
    }

    public override long Seek(long offset, SeekOrigin origin) => ForwardOnly.Seek(Position, () => Length, offset, origin);

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        EnsureDirection(writing: false);
        var read = Inner.Read(buffer);
        Append(buffer[..read]);
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureDirection(writing: false);
        var read = await Inner.ReadAsync(buffer, cancellationToken);
        Append(buffer.Span[..read]);
        return read;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureDirection(writing: true);
        Inner.Write(buffer);
        Append(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureDirection(writing: true);
        await Inner.WriteAsync(buffer, cancellationToken);
        Append(buffer.Span);
    }

    public override void Flush()
    {
        if (_writing)
        {
            Inner.Flush();
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken)
        => _writing ? Inner.FlushAsync(cancellationToken) : Task.CompletedTask;

    /// <summary>Fixes the digest (still readable after disposal) and frees the hash.</summary>
    protected override void ReleaseCore()
    {
        _finalSha256 = _countOnly ? "" : CurrentSha256();
        _hash.Dispose();
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (!_countOnly)
        {
            _hash.AppendData(bytes);
        }
        BytesHashed += bytes.Length;
    }

    private void EnsureDirection(bool writing)
    {
        ThrowIfDisposed();
        if (writing != _writing)
        {
            throw new NotSupportedException(_writing ? "this stream is write-only" : "this stream is read-only");
        }
    }
}
