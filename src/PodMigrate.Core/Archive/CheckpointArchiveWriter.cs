using System.Formats.Tar;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Archive;

/// <summary>What writing an archive produced: sizes, the blob digest and every entry with its digest.</summary>
public sealed record ArchiveWriteResult(long RawSize, long CompressedSize, string ArchiveSha256, IReadOnlyList<ManifestEntry> Files);

/// <summary>Progress of a write: entries done and uncompressed bytes so far (reported after each entry).</summary>
public readonly record struct ArchiveProgress(int Entries, long RawBytes);

/// <summary>
/// Writes a staged checkpoint directory as a tar straight through a codec into a stream, in one pass: each file is read
/// once (hashed as it is read ahead of the tar), the compressed blob is hashed as it is written; nothing is held whole
/// in memory (a few pooled 1 MiB chunks per stage).
/// Entries are in ordinal order, relative, without "./"; directories and regular files only.
/// </summary>
public static class CheckpointArchiveWriter
{
    private const int SymlinkMode = 0x1FF; // 0777

    // 1 MiB chunks, up to four waiting on each side: large enough for few syscalls and task hand-offs, 8 MiB in all.
    private const int PipelineChunkSize = 1 << 20;
    private const int PipelineDepth = 4;

    public static async Task<ArchiveWriteResult> WriteAsync(
        string sourceDirectory,
        Stream destination,
        CodecSettings codec,
        IProgress<ArchiveProgress>? progress,
        CancellationToken cancellationToken,
        IReadOnlyDictionary<string, FileDigest>? knownDigests = null,
        bool startWriteback = true)
    {
        ArgumentNullException.ThrowIfNull(sourceDirectory);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(codec);
        var settings = CheckpointCodecs.Resolve(codec.Name, codec.Level);
        var root = Path.GetFullPath(sourceDirectory);
        if (FileKinds.Of(root) != FileKind.Directory)
        {
            throw PodMigrateException.InvalidArgument($"checkpoint source {root} is not a directory");
        }

        var files = new List<ManifestEntry>();
        // Three stages overlap: each file is read and hashed ahead on a task of its own, this thread frames the tar and
        // feeds libzstd (whose workers compress), and the compressed blob is hashed and written behind on another task.
        var blob = new WriteBehindHashingStream(destination, PipelineChunkSize, PipelineDepth, leaveOpen: true, startWriteback);
        await using (blob)
        {
            var compressor = CheckpointCodecs.Get(settings.Name).CreateCompressor(blob, settings.Level, leaveOpen: true);
            // Every file is hashed as it is read and the compressed blob as it is written: the tar in between only needs counting.
            var raw = HashingStream.CountingWrites(compressor, leaveOpen: true);
            await using (compressor)
            await using (raw)
            {
                var tar = new TarWriter(raw, TarEntryFormat.Pax, leaveOpen: true);
                await using (tar)
                {
                    await WriteDirectoryAsync(tar, root, "", files, raw, knownDigests, progress, cancellationToken);
                }
            }

            await blob.CompleteAsync(cancellationToken);
            return new ArchiveWriteResult(raw.BytesHashed, blob.BytesWritten, blob.Sha256, files);
        }
    }

    private static async Task WriteDirectoryAsync(
        TarWriter tar,
        string directory,
        string prefix,
        List<ManifestEntry> files,
        HashingStream raw,
        IReadOnlyDictionary<string, FileDigest>? knownDigests,
        IProgress<ArchiveProgress>? progress,
        CancellationToken cancellationToken)
    {
        var children = Directory.GetFileSystemEntries(directory);
        Array.Sort(children, StringComparer.Ordinal);
        foreach (var path in children)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var name = prefix + Path.GetFileName(path);
            var kind = FileKinds.Of(path);
            // A symlink's own mode means nothing on Linux; its target's may not exist.
            var mode = kind == FileKind.Symlink ? SymlinkMode : (int)DurableFileSystem.GetMode(path);
            var modified = kind == FileKind.Symlink ? DateTime.UnixEpoch : File.GetLastWriteTimeUtc(path);
            switch (kind)
            {
                case FileKind.Directory:
                    await tar.WriteEntryAsync(NewEntry(TarEntryType.Directory, name + "/", mode, modified), cancellationToken);
                    files.Add(new ManifestEntry { Path = name, Type = ManifestEntryType.Directory, Mode = mode });
                    Report(progress, files, raw);
                    await WriteDirectoryAsync(tar, path, name + "/", files, raw, knownDigests, progress, cancellationToken);
                    break;
                case FileKind.Regular:
                    files.Add(await WriteFileAsync(tar, path, name, mode, modified, knownDigests is not null && knownDigests.TryGetValue(name, out var known) ? known : null, cancellationToken));
                    Report(progress, files, raw);
                    break;
                default:
                    // Readers refuse links and devices (a link is how a runtime was made to read host files): none is written.
                    throw PodMigrateException.InvalidArgument($"{path} is a {kind}: a checkpoint holds only directories and regular files");
            }
        }
    }

    private static async Task<ManifestEntry> WriteFileAsync(
        TarWriter tar, string path, string name, int mode, DateTime modified, FileDigest? known, CancellationToken cancellationToken)
    {
        // A file hashed while it was written (CRIU's page images, during the dump) is only read here.
        var content = new ReadAheadHashingStream(DurableFileSystem.OpenSequentialRead(path, bufferSize: 0), PipelineChunkSize, PipelineDepth, hash: known is null);
        await using var _ = content;
        var size = content.Length;
        if (known is { } digest && digest.Size != size)
        {
            throw new PodMigrateException(ErrorKind.Aborted, $"{path} is {size} bytes, but {digest.Size} were hashed while it was written");
        }
        var entry = NewEntry(TarEntryType.RegularFile, name, mode, modified);
        entry.DataStream = content;
        await tar.WriteEntryAsync(entry, cancellationToken);
        // TarWriter copies exactly Length bytes; a file that grew has bytes left unread (and no digest yet).
        if (content.BytesRead != size || await content.ReadAsync(new byte[1], cancellationToken) != 0)
        {
            throw new PodMigrateException(ErrorKind.Aborted, $"{path} changed size while it was archived ({size} bytes when it was opened)");
        }

        return new ManifestEntry { Path = name, Type = ManifestEntryType.File, Mode = mode, Size = size, Sha256 = known?.Sha256 ?? content.Sha256 };
    }

    private static PaxTarEntry NewEntry(TarEntryType type, string name, int mode, DateTime modified)
        // An empty attribute set keeps the entries free of atime/ctime, which only make archives differ.
        => new(type, name, new Dictionary<string, string>())
        {
            Mode = (UnixFileMode)mode,
            ModificationTime = new DateTimeOffset(modified, TimeSpan.Zero),
            Uid = 0,
            Gid = 0,
        };

    private static void Report(IProgress<ArchiveProgress>? progress, List<ManifestEntry> files, HashingStream raw)
        => progress?.Report(new ArchiveProgress(files.Count, raw.BytesHashed));
}
