using System.Security.Cryptography;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.IO;

[Trait("Category", "Unit")]
public sealed class BackgroundHashingTests
{
    private const int Timeout = 30_000;

    // Empty appends between the others, sizes either side of the powers of two the pool rounds to, and a chunk over 1 MiB.
    private static readonly int[] ChunkSizes = [0, 1, 0, 2, 63, 64, 65, 0, 4095, 4096, 4097, 65_536, 0, 1_100_000, 7, 100_003];

    private static string Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [Theory(Timeout = Timeout)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(16)]
    public async Task Background_sha256_is_the_digest_of_the_appended_chunks_concatenated(int depth)
    {
        var data = ArchiveTestData.RandomBytes(ChunkSizes.Sum(), 11);
        var scratch = new byte[ChunkSizes.Max()];
        await using var hash = new BackgroundSha256(depth);
        var offset = 0;
        foreach (var size in ChunkSizes)
        {
            data.AsSpan(offset, size).CopyTo(scratch);
            await hash.AppendAsync(scratch.AsMemory(0, size), CancellationToken.None);
            // The caller may reuse its buffer at once: the queued chunk must be a copy.
            scratch.AsSpan(0, size).Fill(0xA5);
            offset += size;
            hash.BytesAppended.ShouldBe(offset);
        }

        (await hash.CompleteAsync()).ShouldBe(Hex(data));
        await Should.ThrowAsync<ObjectDisposedException>(async () => await hash.AppendAsync(new byte[1], CancellationToken.None));
    }

    [Fact(Timeout = Timeout)]
    public async Task Background_sha256_of_nothing_or_only_empty_appends_is_the_empty_digest()
    {
        await using var hash = new BackgroundSha256(1);
        await hash.AppendAsync(ReadOnlyMemory<byte>.Empty, CancellationToken.None);
        await hash.AppendAsync(Array.Empty<byte>(), CancellationToken.None);
        hash.BytesAppended.ShouldBe(0);
        (await hash.CompleteAsync()).ShouldBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    [Fact(Timeout = Timeout)]
    public async Task Background_sha256_disposed_without_completing_returns_and_takes_no_more()
    {
        var hash = new BackgroundSha256(1);
        for (var i = 0; i < 20; i++)
        {
            await hash.AppendAsync(new byte[100_000], CancellationToken.None);
        }

        await hash.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await hash.DisposeAsync();
        await Should.ThrowAsync<ObjectDisposedException>(async () => await hash.AppendAsync(new byte[1], CancellationToken.None));
    }

    [Fact(Timeout = Timeout)]
    public async Task Hashing_reader_passes_the_inner_bytes_through_and_hashes_them()
    {
        var data = ArchiveTestData.RandomBytes(1_000_003, 12);
        var inner = new MemoryStream(data);
        var copy = new MemoryStream();
        await using (var reader = new BackgroundHashingReader(inner, depth: 2))
        {
            reader.CanRead.ShouldBeTrue();
            reader.CanSeek.ShouldBeTrue();
            reader.CanWrite.ShouldBeFalse();
            reader.Length.ShouldBe(data.Length);
            var buffer = new byte[70_000];
            var sizes = new Random(15);
            var size = 1;
            int read;
            // Both paths: TarWriter and CopyToAsync read asynchronously, a synchronous caller through Read.
            while ((read = size % 2 == 0
                ? reader.Read(buffer, 0, size)
                : await reader.ReadAsync(buffer.AsMemory(0, size), CancellationToken.None)) > 0)
            {
                copy.Write(buffer, 0, read);
                reader.Position.ShouldBe(copy.Length);
                reader.Position.ShouldBe(inner.Position);
                reader.BytesRead.ShouldBe(copy.Length);
                reader.Length.ShouldBe(data.Length);
                size = sizes.Next(1, buffer.Length);
            }

            (await reader.CompleteAsync()).ShouldBe(Hex(data));
        }

        copy.ToArray().ShouldBe(data);
        inner.CanRead.ShouldBeTrue("the inner stream is left open");
    }

    [Fact(Timeout = Timeout)]
    public async Task Hashing_reader_of_an_empty_stream_gives_the_empty_digest()
    {
        await using var reader = new BackgroundHashingReader(Stream.Null, depth: 1);
        (await reader.ReadAsync(new byte[10], CancellationToken.None)).ShouldBe(0);
        (await reader.CompleteAsync()).ShouldBe(Hex([]));
    }

    [Fact(Timeout = Timeout)]
    public async Task Hashing_reader_seeks_only_to_where_it_is()
    {
        var inner = new MemoryStream(ArchiveTestData.RandomBytes(1000, 13));
        await using var reader = new BackgroundHashingReader(inner, depth: 1);
        (await reader.ReadAsync(new byte[100], CancellationToken.None)).ShouldBe(100);

        reader.Seek(100, SeekOrigin.Begin).ShouldBe(100);
        reader.Seek(0, SeekOrigin.Current).ShouldBe(100);
        reader.Seek(-900, SeekOrigin.End).ShouldBe(100);
        reader.Position = 100;

        Should.Throw<NotSupportedException>(() => reader.Seek(0, SeekOrigin.Begin));
        Should.Throw<NotSupportedException>(() => reader.Seek(101, SeekOrigin.Begin));
        Should.Throw<NotSupportedException>(() => reader.Seek(-1, SeekOrigin.Current));
        Should.Throw<NotSupportedException>(() => reader.Seek(0, SeekOrigin.End));
        Should.Throw<NotSupportedException>(() => reader.Position = 0);
        Should.Throw<NotSupportedException>(() => reader.SetLength(10));
        Should.Throw<NotSupportedException>(() => reader.Write(new byte[1], 0, 1));
        inner.Position.ShouldBe(100, "a refused seek moves nothing");
    }

    [Fact(Timeout = Timeout)]
    public async Task Hashing_reader_over_a_stream_without_length_reads_it_all_and_cannot_seek()
    {
        var data = ArchiveTestData.RandomBytes(50_000, 14);
        await using var reader = new BackgroundHashingReader(new NonSeekableStream(data, maxRead: 999), depth: 2);
        reader.CanSeek.ShouldBeFalse();
        Should.Throw<NotSupportedException>(() => reader.Length);
        var copy = new MemoryStream();
        await reader.CopyToAsync(copy, CancellationToken.None);
        copy.ToArray().ShouldBe(data);
        reader.BytesRead.ShouldBe(data.Length);
        (await reader.CompleteAsync()).ShouldBe(Hex(data));
    }
}
