using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.Codecs;

[Trait("Category", "Unit")]
public sealed class CodecTests
{
    private const int Timeout = 60_000;

    public static TheoryData<string, bool> CodecsAndData => new()
    {
        { "zstd", true }, { "zstd", false }, { "gzip", true }, { "gzip", false }, { "none", true }, { "none", false },
    };

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(CodecsAndData))]
    public async Task Round_trip_returns_the_same_bytes_with_odd_chunk_sizes(string name, bool compressible)
    {
        var data = compressible ? ArchiveTestData.CompressibleBytes(6 << 20, 7) : ArchiveTestData.RandomBytes(6 << 20, 7);
        var codec = CheckpointCodecs.Get(name);

        var compressed = new MemoryStream();
        await using (var compressor = codec.CreateCompressor(compressed, codec.DefaultLevel, leaveOpen: true))
        {
            compressor.CanRead.ShouldBeFalse();
            var random = new Random(1);
            var offset = 0;
            while (offset < data.Length)
            {
                var chunk = Math.Min(random.Next(1, 3 << 20), data.Length - offset);
                if (random.Next(2) == 0)
                {
                    compressor.Write(data, offset, chunk);
                }
                else
                {
                    await compressor.WriteAsync(data.AsMemory(offset, chunk));
                }

                offset += chunk;
            }
        }

        if (compressible && name != "none")
        {
            compressed.Length.ShouldBeLessThan(data.Length / 3, "text-like data must actually be compressed");
        }

        compressed.Position = 0;
        (await ReadAllAsync(codec.CreateDecompressor(compressed, leaveOpen: false))).ShouldBe(data);
    }

    [Theory(Timeout = Timeout)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_zstd_frame_that_ends_exactly_at_the_end_of_a_read_buffer_is_a_clean_end(bool compressible)
    {
        // A tar is a multiple of 512 bytes and readers read in powers of two: a frame's last byte often fills a read exactly.
        const int ReadSize = 64 << 10;
        var data = compressible ? ArchiveTestData.CompressibleBytes(16 * ReadSize, 5) : ArchiveTestData.RandomBytes(16 * ReadSize, 5);
        var codec = CheckpointCodecs.Get("zstd");
        var compressed = new MemoryStream();
        await using (var compressor = codec.CreateCompressor(compressed, codec.DefaultLevel, leaveOpen: true))
        {
            await compressor.WriteAsync(data);
        }

        compressed.Position = 0;
        await using var decompressor = codec.CreateDecompressor(compressed, leaveOpen: false);
        var read = new MemoryStream();
        var buffer = new byte[ReadSize];
        int count;
        while ((count = await decompressor.ReadAsync(buffer)) > 0)
        {
            read.Write(buffer, 0, count);
        }

        read.ToArray().ShouldBe(data);
    }

    [Fact(Timeout = Timeout)]
    public async Task Zstd_single_threaded_and_multi_threaded_outputs_both_decode()
    {
        var data = ArchiveTestData.CompressibleBytes(8 << 20, 3);
        foreach (var workers in new[] { 0, 2 })
        {
            var codec = new ZstdCodec { Workers = workers };
            var compressed = new MemoryStream();
            await using (var compressor = codec.CreateCompressor(compressed, 3, leaveOpen: true))
            {
                await compressor.WriteAsync(data);
            }

            compressed.Position = 0;
            (await ReadAllAsync(codec.CreateDecompressor(compressed, leaveOpen: false))).ShouldBe(data, $"workers={workers}");
        }
    }

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("gzip")]
    public async Task Truncated_or_corrupt_input_is_invalid_data(string name)
    {
        var codec = CheckpointCodecs.Get(name);
        var compressed = await CompressAsync(codec, ArchiveTestData.CompressibleBytes(2 << 20, 5));

        var truncated = new MemoryStream(compressed, 0, compressed.Length / 2);
        await Should.ThrowAsync<InvalidDataException>(() => ReadAllAsync(codec.CreateDecompressor(truncated, leaveOpen: false)));

        var corrupt = (byte[])compressed.Clone();
        corrupt[compressed.Length / 2] ^= 0x40;
        await Should.ThrowAsync<InvalidDataException>(() => ReadAllAsync(codec.CreateDecompressor(new MemoryStream(corrupt), leaveOpen: false)));
    }

    [Fact(Timeout = Timeout)]
    public async Task Zstd_accepts_concatenated_frames_and_rejects_an_empty_stream()
    {
        var codec = CheckpointCodecs.Zstd;
        var first = ArchiveTestData.RandomBytes(100_000, 1);
        var second = ArchiveTestData.CompressibleBytes(100_000, 2);
        var joined = (await CompressAsync(codec, first)).Concat(await CompressAsync(codec, second)).ToArray();
        (await ReadAllAsync(codec.CreateDecompressor(new MemoryStream(joined), leaveOpen: false))).ShouldBe(first.Concat(second).ToArray());

        await Should.ThrowAsync<InvalidDataException>(() => ReadAllAsync(codec.CreateDecompressor(new MemoryStream(), leaveOpen: false)));
    }

    [Fact(Timeout = Timeout)]
    public Task Unknown_codec_and_bad_levels_are_invalid_arguments()
    {
        var unknown = Should.Throw<PodMigrateException>(() => CheckpointCodecs.Get("lz5"));
        unknown.Kind.ShouldBe(ErrorKind.InvalidArgument);
        unknown.Message.ShouldContain("lz5");

        Should.Throw<PodMigrateException>(() => CheckpointCodecs.Resolve("zstd", 0)).Kind.ShouldBe(ErrorKind.InvalidArgument);
        Should.Throw<PodMigrateException>(() => CheckpointCodecs.Resolve("zstd", 23)).Kind.ShouldBe(ErrorKind.InvalidArgument);
        Should.Throw<PodMigrateException>(() => CheckpointCodecs.Resolve("gzip", 10)).Kind.ShouldBe(ErrorKind.InvalidArgument);
        Should.Throw<PodMigrateException>(() => CheckpointCodecs.Resolve("none", 1)).Kind.ShouldBe(ErrorKind.InvalidArgument);
        CheckpointCodecs.Resolve("zstd", null).ShouldBe(new CodecSettings("zstd", 1));
        CheckpointCodecs.Resolve("gzip", 9).ShouldBe(new CodecSettings("gzip", 9));
        return Task.CompletedTask;
    }

    [Theory(Timeout = Timeout)]
    [InlineData("zstd", "zstd", ".zst")]
    [InlineData("gzip", "gzip", ".gz")]
    [InlineData("gzip", "pigz", ".gz")]
    public async Task Our_output_is_read_by_the_cli_and_the_cli_output_by_us(string name, string tool, string suffix)
    {
        using var temp = new TempDirectory();
        var codec = CheckpointCodecs.Get(name);
        var data = ArchiveTestData.CompressibleBytes(6 << 20, 11).Concat(ArchiveTestData.RandomBytes(2 << 20, 12)).ToArray();

        // Ours -> CLI.
        var ours = temp.Combine("ours" + suffix);
        await File.WriteAllBytesAsync(ours, await CompressAsync(codec, data));
        await RunToolAsync(tool, "-d", "-k", "-f", ours);
        (await File.ReadAllBytesAsync(temp.Combine("ours"))).ShouldBe(data);

        // CLI -> ours.
        var plain = temp.Combine("theirs");
        await File.WriteAllBytesAsync(plain, data);
        await RunToolAsync(tool, "-1", "-k", "-f", plain);
        await using var compressed = File.OpenRead(plain + suffix);
        (await ReadAllAsync(codec.CreateDecompressor(compressed, leaveOpen: true))).ShouldBe(data);
    }

    private static async Task RunToolAsync(string tool, params string[] arguments)
    {
        var path = Path.Combine("/usr/bin", tool);
        File.Exists(path).ShouldBeTrue($"{path} is required for the interop test (scripts/setup.sh installs it)");
        await ProcessRunner.RunCheckedAsync(new ProcessSpec(path, ["-q", .. arguments]) { Timeout = TimeSpan.FromSeconds(30) }, CancellationToken.None);
    }

    private static async Task<byte[]> CompressAsync(ICheckpointCodec codec, byte[] data)
    {
        var compressed = new MemoryStream();
        await using (var compressor = codec.CreateCompressor(compressed, codec.DefaultLevel, leaveOpen: true))
        {
            await compressor.WriteAsync(data);
        }

        return compressed.ToArray();
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var result = new MemoryStream();
            var buffer = new byte[100_003];
            var random = new Random(2);
            int read;
            while ((read = random.Next(2) == 0
                       ? stream.Read(buffer, 0, random.Next(1, buffer.Length))
                       : await stream.ReadAsync(buffer.AsMemory(0, random.Next(1, buffer.Length)))) > 0)
            {
                result.Write(buffer, 0, read);
            }

            return result.ToArray();
        }
    }
}
