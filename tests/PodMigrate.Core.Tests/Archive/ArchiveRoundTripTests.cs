using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Tests.Archive;

[Trait("Category", "Unit")]
public sealed class ArchiveRoundTripTests
{
    private const int Timeout = 60_000;

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("gzip")]
    [InlineData("none")]
    public async Task Extracting_what_was_written_gives_the_same_tree_with_private_modes(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"));
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));

        manifest.CompressedSize.ShouldBe(new FileInfo(blob).Length);
        manifest.Files.Select(f => f.Path).ShouldBe(
        [
            "checkpoint", "checkpoint/empty.img", "checkpoint/inventory.img", "checkpoint/mm-42.img", "checkpoint/nested",
            "checkpoint/nested/deeper", "checkpoint/nested/deeper/note.txt", "checkpoint/pages-1.img",
            "config.dump", "dump.log", "spec.dump",
        ]);
        manifest.Files.Single(f => f.Path == "checkpoint/pages-1.img").Size.ShouldBe(3 << 20);

        var target = temp.Combine("target");
        await using (var stream = File.OpenRead(blob))
        {
            await CheckpointArchiveReader.ExtractAsync(stream, manifest, target, CancellationToken.None);
        }

        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));
        foreach (var path in Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories).Append(target))
        {
            var kind = FileKinds.Of(path);
            if (kind != FileKind.Symlink)
            {
                DurableFileSystem.GetMode(path).ShouldBe(
                    kind == FileKind.Directory ? DurableFileSystem.PrivateDirectoryMode : DurableFileSystem.PrivateFileMode, path);
            }
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task Writing_the_same_tree_twice_gives_the_same_bytes()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (first, _) = await WriteAsync(source, temp.Combine("a"), new CodecSettings("none", 0));
        var (second, _) = await WriteAsync(source, temp.Combine("b"), new CodecSettings("none", 0));
        second.ArchiveSha256.ShouldBe(first.ArchiveSha256);
        second.Files.ShouldBe(first.Files);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_plain_tar_has_relative_names_without_dot_slash_and_a_checkpoint_directory_entry()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 10_000);
        var (_, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("none", 0));

        var names = new List<(string Name, System.Formats.Tar.TarEntryType Type)>();
        await using (var reader = new System.Formats.Tar.TarReader(File.OpenRead(blob)))
        {
            while (await reader.GetNextEntryAsync() is { } entry)
            {
                names.Add((entry.Name, entry.EntryType));
            }
        }

        names.ShouldContain(("checkpoint/", System.Formats.Tar.TarEntryType.Directory));
        names.ShouldContain(("config.dump", System.Formats.Tar.TarEntryType.RegularFile));
        names.ShouldAllBe(n => !n.Name.StartsWith("./", StringComparison.Ordinal) && !n.Name.StartsWith('/'));
    }

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("gzip")]
    [InlineData("none")]
    public async Task A_flipped_byte_or_a_truncated_blob_is_data_loss_and_leaves_nothing(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 1 << 20);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));
        var pristine = await File.ReadAllBytesAsync(blob);

        foreach (var damage in new Action[]
        {
            () => ArchiveTestData.FlipByte(blob, pristine.Length / 2),
            () => ArchiveTestData.FlipByte(blob, -3),
            () => ArchiveTestData.Truncate(blob, pristine.Length * 2 / 3),
            () => ArchiveTestData.Truncate(blob, pristine.Length - 1),
        })
        {
            await File.WriteAllBytesAsync(blob, pristine);
            damage();
            var target = temp.Combine("target");
            var error = await ExtractRefusedAsync(blob, manifest, target);
            error.Kind.ShouldBe(ErrorKind.DataLoss, error.ToString());
            error.Message.ShouldContain(manifest.CheckpointId);
            Directory.Exists(target).ShouldBeFalse("a failed extraction must remove what it wrote");
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_file_whose_digest_differs_from_the_manifest_is_named()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 10_000);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var tampered = manifest with
        {
            Files = [.. manifest.Files.Select(f => f.Path == "config.dump" ? f with { Sha256 = new string('0', 64) } : f)],
        };

        var target = temp.Combine("target");
        Directory.CreateDirectory(target);
        var error = await ExtractRefusedAsync(blob, tampered, target);
        error.Kind.ShouldBe(ErrorKind.DataLoss);
        error.Message.ShouldContain("config.dump");
        Directory.EnumerateFileSystemEntries(target).ShouldBeEmpty("an existing empty target is emptied again");
    }

    [Fact(Timeout = Timeout)]
    public async Task Entries_missing_from_or_unknown_to_the_manifest_are_data_loss()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 10_000);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("none", 0));

        var withExtra = manifest with { Files = [.. manifest.Files, new ManifestEntry { Path = "never-written", Type = ManifestEntryType.File, Sha256 = "00" }] };
        var withoutOne = manifest with { Files = [.. manifest.Files.Where(f => f.Path != "dump.log")] };
        foreach (var (expected, word) in new[] { (withExtra, "never-written"), (withoutOne, "dump.log") })
        {
            var error = await ExtractRefusedAsync(blob, expected, temp.Combine("target"));
            error.Kind.ShouldBe(ErrorKind.DataLoss);
            error.Message.ShouldContain(word);
        }
    }

    [Theory(Timeout = Timeout)]
    [InlineData("none")]
    [InlineData("zstd")]
    public async Task A_flipped_byte_inside_a_multi_mib_file_is_caught_by_that_files_digest_and_leaves_the_target_empty(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 4 << 20);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));

        // The pages are random, so zstd stores them as they are too: find bytes from the file's middle in the blob.
        var pages = await File.ReadAllBytesAsync(Path.Combine(source, "checkpoint", "pages-1.img"));
        var at = (await File.ReadAllBytesAsync(blob)).AsSpan().IndexOf(pages.AsSpan(2 << 20, 64));
        at.ShouldBeGreaterThan(0, "the middle of pages-1.img is in the blob as it is");
        ArchiveTestData.FlipByte(blob, at + 32);

        var target = temp.Combine("target");
        Directory.CreateDirectory(target);
        var error = await ExtractRefusedAsync(blob, manifest, target);
        error.Kind.ShouldBe(ErrorKind.DataLoss, error.ToString());
        // The file's own digest, not the blob's at the end (nor zstd's frame checksum after it), catches the flip.
        error.Message.ShouldContain("file \"checkpoint/pages-1.img\" has sha256 ");
        error.Message.ShouldContain(manifest.Files.Single(f => f.Path == "checkpoint/pages-1.img").Sha256!);
        Directory.EnumerateFileSystemEntries(target).ShouldBeEmpty("a failed extraction into an existing empty target empties it again");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_known_digest_goes_into_the_manifest_unchecked_and_the_restore_refuses_a_wrong_one()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var real = ArchiveTestData.Snapshot(source);
        // Well-formed but not the file's: the digest of other bytes of the same size.
        var wrong = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(new byte[100_000]));
        var known = new Dictionary<string, FileDigest> { ["checkpoint/pages-1.img"] = new(100_000, wrong) };

        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1), known);

        var pages = manifest.Files.Single(f => f.Path == "checkpoint/pages-1.img");
        pages.Sha256.ShouldBe(wrong);
        pages.Size.ShouldBe(100_000);
        // The files without a known digest are hashed as before.
        manifest.Files.Single(f => f.Path == "checkpoint/mm-42.img").Sha256.ShouldBe(real["checkpoint/mm-42.img"]["file:".Length..]);

        var target = temp.Combine("target");
        var error = await ExtractRefusedAsync(blob, manifest, target);
        error.Kind.ShouldBe(ErrorKind.DataLoss, error.ToString());
        error.Message.ShouldContain("\"checkpoint/pages-1.img\"");
        error.Message.ShouldContain(wrong);
        Directory.Exists(target).ShouldBeFalse();
    }

    [Fact(Timeout = Timeout)]
    public async Task A_right_known_digest_gives_the_same_archive_as_hashing_and_restores()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var pagesPath = Path.Combine(source, "checkpoint", "pages-1.img");
        var known = new Dictionary<string, FileDigest>
        {
            ["checkpoint/pages-1.img"] = new(100_000, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(pagesPath)))),
            // A digest for a file that is not there is not used.
            ["checkpoint/pages-2.img"] = new(5, new string('0', 64)),
        };

        var (hashed, _) = await WriteAsync(source, temp.Combine("hashed"), new CodecSettings("zstd", 1));
        var (withKnown, blob) = await WriteAsync(source, temp.Combine("known"), new CodecSettings("zstd", 1), known);

        withKnown.Files.ShouldBe(hashed.Files);
        withKnown.ArchiveSha256.ShouldBe(hashed.ArchiveSha256);
        var target = temp.Combine("target");
        await using (var stream = File.OpenRead(blob))
        {
            await CheckpointArchiveReader.ExtractAsync(stream, withKnown, target, CancellationToken.None);
        }

        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));
    }

    [Theory(Timeout = Timeout)]
    [InlineData(99_999)]
    [InlineData(100_001)]
    public async Task A_file_whose_size_is_not_the_size_hashed_is_aborted(long hashedSize)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var known = new Dictionary<string, FileDigest> { ["checkpoint/pages-1.img"] = new(hashedSize, new string('a', 64)) };

        var error = await Should.ThrowAsync<PodMigrateException>(() => WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1), known));
        error.Kind.ShouldBe(ErrorKind.Aborted);
        error.Message.ShouldContain(Path.Combine(source, "checkpoint", "pages-1.img"));
        error.Message.ShouldContain($"is 100000 bytes, but {hashedSize} were hashed");
    }

    [Fact(Timeout = Timeout)]
    public async Task The_writer_refuses_special_files()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 10);
        var fifo = Path.Combine(source, "checkpoint", "fifo");
        await PodMigrate.Core.Processes.ProcessRunner.RunCheckedAsync(new PodMigrate.Core.Processes.ProcessSpec("/usr/bin/mkfifo", [fifo]), CancellationToken.None);

        var error = await Should.ThrowAsync<PodMigrateException>(() => WriteAsync(source, temp.Combine("archive"), new CodecSettings("none", 0)));
        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldContain(fifo);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_archive_digest_mode_trusts_the_blob_digest_for_large_files_only()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 17 << 20);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var wrong = new string('0', 64);
        Func<string, CheckpointManifest> tamper = path => manifest with
        {
            Files = [.. manifest.Files.Select(f => f.Path == path ? f with { Sha256 = wrong } : f)],
        };

        // A large file's own digest is not re-hashed: the blob's, which matched, covers its bytes.
        var target = temp.Combine("large");
        await using (var stream = File.OpenRead(blob))
        {
            await CheckpointArchiveReader.ExtractAsync(stream, tamper("checkpoint/pages-1.img"), target, CancellationToken.None, ArchiveVerification.ArchiveDigest);
        }
        ArchiveTestData.Snapshot(target).ShouldBe(ArchiveTestData.Snapshot(source));

        // A small one's is, and every file's in the full mode.
        foreach (var (path, verification) in new[] { ("config.dump", ArchiveVerification.ArchiveDigest), ("checkpoint/pages-1.img", ArchiveVerification.EveryFile) })
        {
            var error = await ExtractRefusedAsync(blob, tamper(path), temp.Combine("refused"), verification);
            error.Kind.ShouldBe(ErrorKind.DataLoss);
            error.Message.ShouldContain($"\"{path}\" has sha256 ");
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task The_archive_digest_mode_still_refuses_a_flipped_byte_in_a_large_file_and_leaves_nothing()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 17 << 20);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("none", 0));
        var pages = await File.ReadAllBytesAsync(Path.Combine(source, "checkpoint", "pages-1.img"));
        var at = (await File.ReadAllBytesAsync(blob)).AsSpan().IndexOf(pages.AsSpan(8 << 20, 64));
        at.ShouldBeGreaterThan(0);
        ArchiveTestData.FlipByte(blob, at + 32);

        var target = temp.Combine("target");
        var error = await ExtractRefusedAsync(blob, manifest, target, ArchiveVerification.ArchiveDigest);
        error.Kind.ShouldBe(ErrorKind.DataLoss);
        error.Message.ShouldContain($"archive sha256 is ");
        error.Message.ShouldContain(manifest.ArchiveSha256!);
        Directory.Exists(target).ShouldBeFalse("nothing of a refused archive stays");
    }

    [Fact(Timeout = Timeout)]
    public async Task Verify_checks_every_file_without_writing_anything()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 17 << 20);
        var (manifest, blob) = await WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        await using (var stream = File.OpenRead(blob))
        {
            await CheckpointArchiveReader.VerifyAsync(stream, manifest, CancellationToken.None);
        }

        var tampered = manifest with
        {
            Files = [.. manifest.Files.Select(f => f.Path == "checkpoint/pages-1.img" ? f with { Sha256 = new string('0', 64) } : f)],
        };
        var error = await Should.ThrowAsync<PodMigrateException>(async () =>
        {
            await using var stream = File.OpenRead(blob);
            await CheckpointArchiveReader.VerifyAsync(stream, tampered, CancellationToken.None);
        });
        error.Kind.ShouldBe(ErrorKind.DataLoss);
        error.Message.ShouldContain("\"checkpoint/pages-1.img\" has sha256 ");
    }

    private static async Task<PodMigrateException> ExtractRefusedAsync(
        string blob, CheckpointManifest manifest, string target, ArchiveVerification verification = ArchiveVerification.EveryFile)
        => await Should.ThrowAsync<PodMigrateException>(async () =>
        {
            await using var stream = File.OpenRead(blob);
            await CheckpointArchiveReader.ExtractAsync(stream, manifest, target, CancellationToken.None, verification);
        });

    internal static async Task<(CheckpointManifest Manifest, string Blob)> WriteAsync(
        string source, string blob, CodecSettings codec, IReadOnlyDictionary<string, FileDigest>? knownDigests = null)
    {
        ArchiveWriteResult result;
        await using (var stream = File.Create(blob))
        {
            result = await CheckpointArchiveWriter.WriteAsync(source, stream, codec, progress: null, CancellationToken.None, knownDigests);
        }

        var manifest = new CheckpointManifest
        {
            CheckpointId = "ck-test",
            Codec = codec,
            RawSize = result.RawSize,
            CompressedSize = result.CompressedSize,
            ArchiveSha256 = result.ArchiveSha256,
            Files = result.Files,
        };
        return (manifest, blob);
    }
}
