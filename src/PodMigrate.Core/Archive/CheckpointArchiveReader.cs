using System.Formats.Tar;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Interop;

namespace PodMigrate.Core.Archive;

/// <summary>
/// <summary>How much of an archive a reading pass re-hashes.</summary>
public enum ArchiveVerification
{
    /// <summary>
    /// The whole blob's size and sha256, which cover every byte of every file, plus each entry's name, type and size,
    /// and the sha256 of every file under 16 MiB (metadata a sink may act on before the pass ends). A large file's own
    /// sha256 would only prove again what the blob's does, at 0.8 s a GiB on the restore's critical path.
    /// </summary>
    ArchiveDigest,

    /// <summary>All of <see cref="ArchiveDigest"/> and the sha256 of every file (a full check, e.g. <c>inspect --verify</c>).</summary>
    EveryFile,
}

/// <summary>
/// Extracts a checkpoint archive in one streaming pass while verifying it: every entry name stays inside the target,
/// only directories and regular files are accepted (symlinks, hard links, devices and fifos are refused by name: a
/// link in a checkpoint is how a runtime was made to read host files through <c>container.log</c>), each file's sha256
/// and size must match the manifest, and the sha256 and size of the whole blob are checked at the end. Any failure
/// removes what was extracted. Files are created 0600 and directories 0700, whatever the archive says.
/// </summary>
public static class CheckpointArchiveReader
{
    private const int BlobChunkSize = 1 << 20;
    private const int BlobReadAhead = 4;

    /// <summary>Extracts and verifies an archive described by <paramref name="manifest"/> into <paramref name="targetDirectory"/> (absent or empty).</summary>
    public static Task ExtractAsync(
        Stream blob, CheckpointManifest manifest, string targetDirectory, CancellationToken cancellationToken, ArchiveVerification verification = ArchiveVerification.EveryFile)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return ExtractCoreAsync(blob, manifest.Codec, manifest, manifest.CheckpointId, targetDirectory, verification, cancellationToken);
    }

    /// <summary>
    /// Extracts an archive that has no PodMigrate manifest (e.g. one a CRI runtime wrote): names, links and entry types
    /// are checked, digests cannot be.
    /// </summary>
    public static Task ExtractUnverifiedAsync(Stream blob, CodecSettings codec, string subject, string targetDirectory, CancellationToken cancellationToken)
        => ExtractCoreAsync(blob, codec, manifest: null, subject, targetDirectory, ArchiveVerification.EveryFile, cancellationToken);

    /// <summary>
    /// Extracts an archive that is still being written, whose manifest is not published yet: names, links and entry
    /// types are checked as the entries arrive, the blob is hashed as it is read; once it ends, <paramref name="manifest"/>
    /// (the published, signature-checked manifest) must match the blob's size and sha256, which cover every byte of every
    /// file. Until this returns, nothing in <paramref name="targetDirectory"/> may be used; any failure removes it.
    /// </summary>
    public static async Task<CheckpointManifest> ExtractThenVerifyAsync(
        Stream blob, CodecSettings codec, string subject, string targetDirectory, Func<CancellationToken, Task<CheckpointManifest>> manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(codec);
        ArgumentNullException.ThrowIfNull(manifest);
        var target = Path.GetFullPath(targetDirectory);
        var created = PrepareTarget(target);
        try
        {
            var pass = new VerifyingPass(subject, manifest: null, new DirectorySink(subject, target), ArchiveVerification.ArchiveDigest);
            var hashed = new ReadAheadHashingStream(blob, BlobChunkSize, BlobReadAhead, leaveOpen: true);
            await using (hashed)
            {
                await pass.RunAsync(hashed, CheckpointCodecs.Get(codec.Name), cancellationToken);
                // The codec may stop before the blob's last bytes (a frame's end): the digest covers all of them.
                var rest = ArchiveBuffers.Pool.Rent(BlobChunkSize);
                try
                {
                    while (await hashed.ReadAsync(rest.AsMemory(0, BlobChunkSize), cancellationToken) > 0)
                    {
                    }
                }
                finally
                {
                    ArchiveBuffers.Pool.Return(rest);
                }
                var published = await manifest(cancellationToken);
                if (published.CheckpointId != subject)
                {
                    throw new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {subject}: the published manifest is checkpoint {published.CheckpointId}'s");
                }
                VerifyBlob(published, hashed.BytesRead, hashed.Sha256);
                return published;
            }
        }
        catch
        {
            RemoveExtracted(target, created);
            throw;
        }
    }

    /// <summary>The full check of a stored archive without writing anything: the pass of <see cref="ExtractAsync"/> into nowhere.</summary>
    public static Task VerifyAsync(Stream blob, CheckpointManifest manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        return VerifyingPassAsync(blob, manifest.Codec, manifest, manifest.CheckpointId, new DiscardingSink(), ArchiveVerification.EveryFile, cancellationToken);
    }

    private static async Task ExtractCoreAsync(
        Stream blob, CodecSettings codec, CheckpointManifest? manifest, string subject, string targetDirectory, ArchiveVerification verification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blob);
        ArgumentNullException.ThrowIfNull(codec);
        ArgumentNullException.ThrowIfNull(targetDirectory);
        var target = Path.GetFullPath(targetDirectory);
        var created = PrepareTarget(target);
        try
        {
            await VerifyingPassAsync(blob, codec, manifest, subject, new DirectorySink(subject, target), verification, cancellationToken);
        }
        catch
        {
            RemoveExtracted(target, created);
            throw;
        }
    }

    /// <summary>
    /// The one streaming pass every reader shares: decompress, check each entry (name, type, size, and sha256 as
    /// <paramref name="verification"/> says, against the manifest) while <paramref name="sink"/> consumes it, then check
    /// that nothing is missing and the whole blob's size and sha256. A sink sees each file's bytes exactly once.
    /// </summary>
    internal static async Task VerifyingPassAsync(
        Stream blob, CodecSettings codec, CheckpointManifest? manifest, string subject, IArchiveEntrySink sink, ArchiveVerification verification, CancellationToken cancellationToken)
    {
        var pass = new VerifyingPass(subject, manifest, sink, verification);
        // The share is read and the blob hashed on a task of its own, ahead of decompression.
        var hashed = new ReadAheadHashingStream(blob, BlobChunkSize, BlobReadAhead, leaveOpen: true);
        await using (hashed)
        {
            await pass.RunAsync(hashed, CheckpointCodecs.Get(codec.Name), cancellationToken);
            if (manifest is not null)
            {
                VerifyBlob(manifest, hashed.BytesRead, hashed.Sha256);
            }
        }
    }

    internal static PodMigrateException Refused(string subject, string entry, string why)
        => new(ErrorKind.DataLoss, $"checkpoint {subject}: refused archive entry \"{entry}\": it {why}");

    private static void VerifyBlob(CheckpointManifest manifest, long size, string sha256)
    {
        if (size != manifest.CompressedSize)
        {
            throw new PodMigrateException(ErrorKind.DataLoss,
                $"checkpoint {manifest.CheckpointId}: archive is {size} bytes, the manifest says {manifest.CompressedSize}");
        }

        if (!string.Equals(sha256, manifest.ArchiveSha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new PodMigrateException(ErrorKind.DataLoss,
                $"checkpoint {manifest.CheckpointId}: archive sha256 is {sha256}, the manifest says {manifest.ArchiveSha256}");
        }
    }

    /// <summary>Creates the target, or accepts an empty one; true when it was created here.</summary>
    private static bool PrepareTarget(string target)
    {
        if (Directory.Exists(target))
        {
            if (Directory.EnumerateFileSystemEntries(target).Any())
            {
                throw PodMigrateException.FailedPrecondition($"extraction target {target} is not empty");
            }

            DurableFileSystem.SetMode(target, DurableFileSystem.PrivateDirectoryMode);
            return false;
        }

        DurableFileSystem.CreatePrivateDirectory(target);
        return true;
    }

    private static void RemoveExtracted(string target, bool created)
    {
        if (created)
        {
            Directory.Delete(target, recursive: true);
            return;
        }

        foreach (var path in Directory.EnumerateFileSystemEntries(target))
        {
            if (FileKinds.Of(path) == FileKind.Directory)
            {
                Directory.Delete(path, recursive: true);
            }
            else
            {
                File.Delete(path);
            }
        }
    }

    private sealed class VerifyingPass(string subject, CheckpointManifest? manifest, IArchiveEntrySink sink, ArchiveVerification verification)
    {
        // As large as a captured file may be (CheckpointTarCopyOptions.MaxCapturedBytes): what a sink acts on is hashed first.
        private const long SmallFile = 16 << 20;
        private readonly Dictionary<string, ManifestEntry>? _expected = manifest?.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        // Chunks a file's bytes may queue for its background hash: with 1 MiB reads, 8 MiB in flight at most.
        private const int HashDepth = 8;
        private readonly byte[] _drain = new byte[1 << 16];
        private string _current = "(archive header)";

        public async Task RunAsync(Stream blob, ICheckpointCodec codec, CancellationToken cancellationToken)
        {
            try
            {
                var decompressed = codec.CreateDecompressor(blob, leaveOpen: true);
                await using (decompressed)
                {
                    var reader = new TarReader(decompressed, leaveOpen: true);
                    await using (reader)
                    {
                        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
                        {
                            await PassEntryAsync(entry, cancellationToken);
                            _current = "(after " + _current + ")";
                        }
                    }

                    // The tar reader stops at the end marker: read the rest so the blob digest covers every byte.
                    while (await decompressed.ReadAsync(_drain, cancellationToken) > 0)
                    {
                    }
                }

                while (await blob.ReadAsync(_drain, cancellationToken) > 0)
                {
                }
            }
            // System.Formats.Tar also throws OverflowException and InvalidOperationException on some malformed headers
            // (found by the archive fuzzer: a huge size field, a pax header longer than its entry).
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException or OverflowException
                                      or InvalidOperationException { Source: "System.Formats.Tar" })
            {
                throw new PodMigrateException(ErrorKind.DataLoss,
                    $"checkpoint {subject}: archive is corrupt or truncated at {_current}: {e.Message}", e);
            }
            catch (IOException e) when (DurableFileSystem.IsOutOfSpace(e))
            {
                throw new PodMigrateException(ErrorKind.ResourceExhausted,
                    $"checkpoint {subject}: no space left in {sink.Location} while writing {_current}", e);
            }

            if (_expected is not null)
            {
                foreach (var path in _expected.Keys)
                {
                    if (!_seen.Contains(path))
                    {
                        throw Corrupt(path, "is in the manifest but not in the archive (truncated?)");
                    }
                }
            }
        }

        private async Task PassEntryAsync(TarEntry entry, CancellationToken cancellationToken)
        {
            if (entry.EntryType == TarEntryType.GlobalExtendedAttributes)
            {
                return;
            }

            _current = entry.Name;
            var name = ArchivePaths.Normalize(entry.Name) ?? throw Refused(entry.Name, "has an absolute, empty or \"..\" path");
            _current = name;
            if (entry.EntryType is not (TarEntryType.Directory or TarEntryType.RegularFile or TarEntryType.V7RegularFile))
            {
                // Before the manifest is consulted: a link or device is refused as such, whatever the manifest lists.
                throw Refused(name, Describe(entry) + ": a checkpoint holds only directories and regular files");
            }

            if (!_seen.Add(name))
            {
                throw Refused(name, "appears twice");
            }

            var expected = Expect(name, entry.EntryType);
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    await sink.DirectoryAsync(name, cancellationToken);
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile:
                    await PassFileAsync(entry, name, expected, cancellationToken);
                    break;
                default:
                    throw Refused(name, Describe(entry) + ": a checkpoint holds only directories and regular files");
            }
        }

        private async Task PassFileAsync(TarEntry entry, string name, ManifestEntry? expected, CancellationToken cancellationToken)
        {
            if (expected is not null && entry.Length != expected.Size)
            {
                throw Corrupt(name, $"is {entry.Length} bytes, the manifest says {expected.Size}");
            }

            var hashed = expected is not null && (verification == ArchiveVerification.EveryFile || entry.Length < SmallFile);
            // A hashed file is hashed on the other core while this one decompresses and writes it.
            var data = new BackgroundHashingReader(entry.DataStream ?? Stream.Null, HashDepth, hashed);
            await using (data)
            {
                string? sha256 = null;
                // The sink may call verify itself before it acts on the bytes (e.g. rewrites them); checking twice is harmless.
                async ValueTask VerifyAsync()
                {
                    if (data.BytesRead != entry.Length)
                    {
                        throw Corrupt(name, $"ended after {data.BytesRead} of {entry.Length} bytes (truncated)");
                    }

                    if (data.Hashes)
                    {
                        sha256 ??= await data.CompleteAsync();
                        if (!string.Equals(sha256, expected!.Sha256, StringComparison.OrdinalIgnoreCase))
                        {
                            throw Corrupt(name, $"has sha256 {sha256}, the manifest says {expected.Sha256}");
                        }
                    }
                }

                await sink.FileAsync(name, entry.Length, data, VerifyAsync, cancellationToken);
                await VerifyAsync();
            }
        }

        private ManifestEntry? Expect(string name, TarEntryType type)
        {
            if (_expected is null)
            {
                return null;
            }

            if (!_expected.TryGetValue(name, out var expected))
            {
                throw Corrupt(name, "is not in the manifest");
            }

            var matches = expected.Type switch
            {
                ManifestEntryType.File => type is TarEntryType.RegularFile or TarEntryType.V7RegularFile,
                ManifestEntryType.Directory => type == TarEntryType.Directory,
                ManifestEntryType.Symlink => type == TarEntryType.SymbolicLink,
                _ => false,
            };
            return matches ? expected : throw Corrupt(name, $"is a {type} entry, the manifest says {expected.Type}");
        }

        private PodMigrateException Refused(string entry, string why) => CheckpointArchiveReader.Refused(subject, entry, why);

        private static string Describe(TarEntry entry) => entry.EntryType switch
        {
            TarEntryType.SymbolicLink => $"is a symbolic link (to \"{entry.LinkName}\")",
            TarEntryType.HardLink => $"is a hard link (to \"{entry.LinkName}\")",
            TarEntryType.CharacterDevice or TarEntryType.BlockDevice => entry is PosixTarEntry device
                ? $"is a device node ({entry.EntryType} {device.DeviceMajor}:{device.DeviceMinor})"
                : $"is a device node ({entry.EntryType})",
            TarEntryType.Fifo => "is a fifo",
            var other => $"is a {other} entry",
        };

        private PodMigrateException Corrupt(string entry, string why)
            => new(ErrorKind.DataLoss, $"checkpoint {subject}: file \"{entry}\" {why}");
    }

    /// <summary>Reads every file to its end and keeps nothing: for a verifying pass alone.</summary>
    private sealed class DiscardingSink : IArchiveEntrySink
    {
        public string Location => "(verification only)";

        public ValueTask DirectoryAsync(string name, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public async ValueTask FileAsync(string name, long length, Stream data, Func<ValueTask> verify, CancellationToken cancellationToken)
            => await data.CopyToAsync(Stream.Null, 1 << 20, cancellationToken);
    }

    /// <summary>Writes the verified entries as files under <paramref name="target"/>: files 0600, directories 0700.</summary>
    private sealed class DirectorySink(string subject, string target) : IArchiveEntrySink
    {
        public string Location => target;

        public ValueTask DirectoryAsync(string name, CancellationToken cancellationToken)
        {
            var path = Path.Combine(target, name);
            EnsureParents(name);
            if (FileKinds.OfOrNull(path) is { } existing)
            {
                if (existing != FileKind.Directory)
                {
                    throw Refused(subject, name, "is a directory over an existing non-directory");
                }

                DurableFileSystem.SetMode(path, DurableFileSystem.PrivateDirectoryMode);
            }
            else
            {
                DurableFileSystem.CreatePrivateDirectory(path);
            }

            return ValueTask.CompletedTask;
        }

        public async ValueTask FileAsync(string name, long length, Stream data, Func<ValueTask> verify, CancellationToken cancellationToken)
        {
            EnsureParents(name);
            FileStream file;
            try
            {
                file = DurableFileSystem.CreatePrivateFile(Path.Combine(target, name), FileMode.CreateNew, bufferSize: 0);
            }
            catch (IOException e) when (e.HResult == LibC.EEXIST)
            {
                throw Refused(subject, name, "would overwrite an existing entry");
            }

            await using (file)
            {
                await data.CopyToAsync(file, 1 << 20, cancellationToken);
            }
        }

        /// <summary>Creates missing parent directories; refuses to pass through anything but a real directory (no writing through links).</summary>
        private void EnsureParents(string name)
        {
            var current = target;
            var segments = name.Split('/');
            for (var i = 0; i < segments.Length - 1; i++)
            {
                current = Path.Combine(current, segments[i]);
                switch (FileKinds.OfOrNull(current))
                {
                    case null:
                        DurableFileSystem.CreatePrivateDirectory(current);
                        break;
                    case FileKind.Directory:
                        break;
                    default:
                        throw Refused(subject, name, $"goes through {string.Join('/', segments[..(i + 1)])}, which is not a directory");
                }
            }
        }

    }
}
