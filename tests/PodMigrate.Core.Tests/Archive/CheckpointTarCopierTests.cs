using System.Formats.Tar;
using System.Text;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tests.Archive;

[Trait("Category", "Unit")]
public sealed class CheckpointTarCopierTests
{
    private const int Timeout = 60_000;

    private static readonly CheckpointTarCopyOptions CaptureMetadata = new()
    {
        Captured = new HashSet<string>(StringComparer.Ordinal) { CheckpointLayout.ConfigDumpFile, CheckpointLayout.SpecDumpFile },
    };

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("gzip")]
    [InlineData("none")]
    public async Task The_plain_tar_holds_the_same_tree_and_the_metadata_comes_back_in_memory(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"));
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));
        var tar = temp.Combine("out", "checkpoint.tar");

        IReadOnlyDictionary<string, byte[]> captured;
        await using (var stream = File.OpenRead(blob))
        {
            captured = (await CopyToFileAsync(stream, manifest, tar, CaptureMetadata)).Captured;
        }

        captured.Keys.Order(StringComparer.Ordinal).ShouldBe([CheckpointLayout.ConfigDumpFile, CheckpointLayout.SpecDumpFile]);
        captured[CheckpointLayout.SpecDumpFile].ShouldBe(File.ReadAllBytes(Path.Combine(source, CheckpointLayout.SpecDumpFile)));
        (await ExtractPlainAsync(tar, temp.Combine("unpacked"))).ShouldBe(ArchiveTestData.Snapshot(source));
        await using var reader = new TarReader(File.OpenRead(tar));
        var first = await reader.GetNextEntryAsync();
        first.ShouldNotBeNull().Name.StartsWith("./", StringComparison.Ordinal).ShouldBeFalse("runtimes expect relative names without ./");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_rewritten_entry_is_checked_on_its_original_bytes_and_written_as_rewritten()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var original = File.ReadAllBytes(Path.Combine(source, CheckpointLayout.ConfigDumpFile));
        var rewritten = Encoding.UTF8.GetBytes("{\"id\":\"rewritten, longer than before so the entry size changes\"}");
        var seen = new List<byte[]>();
        var options = CaptureMetadata with
        {
            Rewrite = (name, content, _) =>
            {
                seen.Add(content);
                return ValueTask.FromResult(name == CheckpointLayout.ConfigDumpFile ? rewritten : content);
            },
        };
        var tar = temp.Combine("checkpoint.tar");

        IReadOnlyDictionary<string, byte[]> captured;
        await using (var stream = File.OpenRead(blob))
        {
            captured = (await CopyToFileAsync(stream, manifest, tar, options)).Captured;
        }

        seen.ShouldContain(c => c.SequenceEqual(original), "the rewrite sees the verified original");
        captured[CheckpointLayout.ConfigDumpFile].ShouldBe(rewritten);
        var unpacked = temp.Combine("unpacked");
        await ExtractPlainAsync(tar, unpacked);
        File.ReadAllBytes(Path.Combine(unpacked, CheckpointLayout.ConfigDumpFile)).ShouldBe(rewritten);
        File.ReadAllBytes(Path.Combine(unpacked, "checkpoint", "pages-1.img")).ShouldBe(File.ReadAllBytes(Path.Combine(source, "checkpoint", "pages-1.img")));
    }

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("none")]
    public async Task A_flipped_byte_is_DataLoss(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"));
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));
        ArchiveTestData.FlipByte(blob, new FileInfo(blob).Length / 2);
        var tar = temp.Combine("checkpoint.tar");

        var error = await CopyExpectingFailureAsync(blob, manifest, tar, CaptureMetadata);

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain("ck-test");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_truncated_blob_is_DataLoss()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"));
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        ArchiveTestData.Truncate(blob, new FileInfo(blob).Length - 100);
        var tar = temp.Combine("checkpoint.tar");

        var error = await CopyExpectingFailureAsync(blob, manifest, tar, CaptureMetadata);

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_corrupt_captured_entry_is_DataLoss_before_the_rewrite_sees_it()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("none", 0));
        // Uncompressed, so the byte flipped is inside config.dump's content and the tar stays readable.
        ArchiveTestData.FlipByte(blob, IndexOf(File.ReadAllBytes(blob), "0123456789abcdef"u8.ToArray()));
        var rewrites = 0;
        var options = CaptureMetadata with
        {
            Rewrite = (_, content, _) =>
            {
                rewrites++;
                return ValueTask.FromResult(content);
            },
        };
        var tar = temp.Combine("checkpoint.tar");

        var error = await CopyExpectingFailureAsync(blob, manifest, tar, options);

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain(CheckpointLayout.ConfigDumpFile);
        rewrites.ShouldBe(0, "the rewrite must only ever see verified bytes");
    }

    [Fact(Timeout = Timeout)]
    public async Task An_oversized_captured_entry_is_refused()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var options = CaptureMetadata with { Captured = new HashSet<string>(StringComparer.Ordinal) { "checkpoint/pages-1.img" }, MaxCapturedBytes = 1000 };
        var tar = temp.Combine("checkpoint.tar");

        var error = await CopyExpectingFailureAsync(blob, manifest, tar, options);

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain("checkpoint/pages-1.img");
    }

    [Fact(Timeout = Timeout)]
    public async Task A_reproducible_copy_gives_the_same_bytes_every_time()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var options = CaptureMetadata with { Reproducible = true, FilesAndDirectoriesOnly = true };

        CheckpointTarCopyResult first;
        await using (var stream = File.OpenRead(blob))
        {
            first = await CopyToFileAsync(stream, manifest, temp.Combine("first.tar"), options);
        }
        await Task.Delay(1100);
        await using (var stream = File.OpenRead(blob))
        {
            await CopyToFileAsync(stream, manifest, temp.Combine("second.tar"), options);
        }

        File.ReadAllBytes(temp.Combine("second.tar")).ShouldBe(File.ReadAllBytes(temp.Combine("first.tar")), "no time of the copy and no process id in the bytes");
        first.Skipped.ShouldBeEmpty();
        await using var reader = new TarReader(File.OpenRead(temp.Combine("first.tar")));
        while (await reader.GetNextEntryAsync() is { } entry)
        {
            entry.EntryType.ShouldBeOneOf(TarEntryType.Directory, TarEntryType.RegularFile);
            entry.ModificationTime.ShouldBe(DateTimeOffset.UnixEpoch);
            (entry.Uid, entry.Gid).ShouldBe((0, 0));
        }
    }

    private static async Task<PodMigrateException> CopyExpectingFailureAsync(string blob, CheckpointManifest manifest, string tar, CheckpointTarCopyOptions options)
    {
        await using var stream = File.OpenRead(blob);
        return await Should.ThrowAsync<PodMigrateException>(() => CopyToFileAsync(stream, manifest, tar, options));
    }

    /// <summary>Into a pipe-like stream (unseekable), as the copier is used: entries must be sized before their data.</summary>
    private static async Task<CheckpointTarCopyResult> CopyToFileAsync(Stream blob, CheckpointManifest manifest, string tar, CheckpointTarCopyOptions options)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(tar)!);
        await using var file = File.Create(tar);
        await using var forwardOnly = new ForwardOnlyStream(file);
        return await CheckpointTarCopier.CopyAsync(blob, manifest, forwardOnly, options, CancellationToken.None);
    }

    private static async Task<SortedDictionary<string, string>> ExtractPlainAsync(string tar, string target)
    {
        await using var stream = File.OpenRead(tar);
        await CheckpointArchiveReader.ExtractUnverifiedAsync(stream, new CodecSettings("none", 0), "plain tar", target, CancellationToken.None);
        return ArchiveTestData.Snapshot(target);
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        var at = haystack.AsSpan().IndexOf(needle);
        at.ShouldBeGreaterThanOrEqualTo(0);
        return at;
    }

    /// <summary>Writes through to a file but cannot seek, like a pipe or the content store's write stream.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
    }
}
