using System.Formats.Tar;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Archive;

/// <summary>
/// Turns a stored checkpoint archive (compressed, with a manifest) into another tar (e.g. the layer of a checkpoint
/// image) in one streaming pass: the blob is decompressed once and every entry is copied straight into the new tar
/// while the pass verifies it exactly as <see cref="CheckpointArchiveReader"/> does (names, types, every file's size and
/// sha256, the blob's size and sha256). Only the entries named in <see cref="CheckpointTarCopyOptions.Captured"/>
/// (small metadata such as config.dump) are held in memory, verified, optionally rewritten, and handed back.
/// </summary>
public static class CheckpointTarCopier
{
    /// <summary>
    /// Copies into <paramref name="destination"/>, which may be unseekable (entries are sized before their data).
    /// Verification ends with the blob digest, after the last byte was written: on failure part of a tar has been
    /// written, and the caller must discard it.
    /// </summary>
    public static async Task<CheckpointTarCopyResult> CopyAsync(
        Stream blob, CheckpointManifest manifest, Stream destination, CheckpointTarCopyOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(options);
        var writer = new TarWriter(destination, options.Reproducible ? TarEntryFormat.Gnu : TarEntryFormat.Pax, leaveOpen: true);
        var sink = new TarSink(writer, options);
        await using (writer)
        {
            await CheckpointArchiveReader.VerifyingPassAsync(blob, manifest.Codec, manifest, manifest.CheckpointId, sink, options.Verification, cancellationToken);
        }
        return new CheckpointTarCopyResult(sink.Captured, sink.Skipped);
    }

    private sealed class TarSink(TarWriter writer, CheckpointTarCopyOptions options) : IArchiveEntrySink
    {
        private const UnixFileMode EntryFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        private const UnixFileMode DirectoryMode = EntryFileMode | UnixFileMode.UserExecute;

        public Dictionary<string, byte[]> Captured { get; } = new(StringComparer.Ordinal);

        public List<string> Skipped { get; } = [];

        public string Location => "the checkpoint tar";

        public async ValueTask DirectoryAsync(string name, CancellationToken cancellationToken)
            => await writer.WriteEntryAsync(NewEntry(TarEntryType.Directory, name, DirectoryMode), cancellationToken);

        public async ValueTask FileAsync(string name, long length, Stream data, Func<ValueTask> verify, CancellationToken cancellationToken)
        {
            var entry = NewEntry(TarEntryType.RegularFile, name, EntryFileMode);
            if (!options.Captured.Contains(name))
            {
                entry.DataStream = new KnownLengthStream(data, length);
                await writer.WriteEntryAsync(entry, cancellationToken);
                return;
            }

            if (length > options.MaxCapturedBytes)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"archive entry \"{name}\" is {length} bytes, more than the {options.MaxCapturedBytes} a metadata file may have");
            }
            var content = new byte[length];
            await data.ReadExactlyAsync(content, cancellationToken);
            await verify();
            if (options.Rewrite is { } rewrite)
            {
                content = await rewrite(name, content, cancellationToken);
            }
            Captured[name] = content;
            entry.DataStream = new MemoryStream(content, writable: false);
            await writer.WriteEntryAsync(entry, cancellationToken);
        }

        private TarEntry NewEntry(TarEntryType type, string name, UnixFileMode mode)
            => options.Reproducible
                // GNU, not PAX: .NET names each PAX extended header "PaxHeaders.<process id>/…" and stamps the time of
                // the copy; GNU entries with owner 0 and times at the epoch make the same archive give the same bytes.
                ? new GnuTarEntry(type, name)
                {
                    Mode = mode,
                    ModificationTime = DateTimeOffset.UnixEpoch,
                    AccessTime = DateTimeOffset.UnixEpoch,
                    ChangeTime = DateTimeOffset.UnixEpoch,
                }
                : new PaxTarEntry(type, name) { Mode = mode };
    }
}

/// <summary>Which small entries <see cref="CheckpointTarCopier"/> holds in memory, how it may rewrite them, and the tar it writes.</summary>
public sealed record CheckpointTarCopyOptions
{
    /// <summary>Entries read into memory, verified against the manifest, then passed to <see cref="Rewrite"/> and returned.</summary>
    public IReadOnlySet<string> Captured { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>A captured entry larger than this is refused (DataLoss): metadata is small, and memory is not the share.</summary>
    public long MaxCapturedBytes { get; init; } = 16 << 20;

    /// <summary>
    /// Called with each captured entry's verified bytes (manifest digest checked on the original); what it returns is
    /// written into the tar instead.
    /// </summary>
    public Func<string, byte[], CancellationToken, ValueTask<byte[]>>? Rewrite { get; init; }

    /// <summary>The same archive (and rewrites) always gives the same bytes: no owner names, times at the epoch.</summary>
    public bool Reproducible { get; init; }

    /// <summary>What the pass re-hashes besides the blob (which covers every byte).</summary>
    public ArchiveVerification Verification { get; init; } = ArchiveVerification.EveryFile;

    /// <summary>
    /// Leave out every entry but directories and regular files (listed in <see cref="CheckpointTarCopyResult.Skipped"/>).
    /// The verifying pass refuses links and devices outright, so nothing is left out today; kept for its callers.
    /// </summary>
    public bool FilesAndDirectoriesOnly { get; init; }
}

/// <summary>What a copy handed back: the captured entries as written, and the entries left out.</summary>
public sealed record CheckpointTarCopyResult(IReadOnlyDictionary<string, byte[]> Captured, IReadOnlyList<string> Skipped);

/// <summary>
/// A forward-only reader that tells TarWriter the entry's size up front. Given an unseekable data stream, TarWriter
/// writes a PAX entry into a MemoryStream first to learn its size (the whole 1 GiB pages image, grown by doubling, then
/// copied again); with a known Length it writes the header and streams the data straight through. A short stream
/// leaves a broken tar, which the pass's size check turns into DataLoss (and the file is deleted).
/// </summary>
internal sealed class KnownLengthStream(Stream inner, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => Seek(value, SeekOrigin.Begin);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        _position += read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        _position += read;
        return read;
    }

    /// <summary>Only a no-op seek to where the stream already is (what TarWriter may do) is supported.</summary>
    public override long Seek(long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };
        return target == _position ? _position : throw new NotSupportedException("this stream only reads forward");
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
