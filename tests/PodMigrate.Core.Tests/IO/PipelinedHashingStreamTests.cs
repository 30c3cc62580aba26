using System.Security.Cryptography;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.IO;

public sealed class PipelinedHashingStreamTests
{
    private const int Enospc = 28;

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_hands_over_every_byte_in_order_and_hashes_them()
    {
        var data = ArchiveTestData.RandomBytes(10_007, 1);
        await using var stream = new ReadAheadHashingStream(new MemoryStream(data), chunkSize: 1000, depth: 2);
        stream.Length.ShouldBe(data.Length);
        Should.Throw<InvalidOperationException>(() => stream.Sha256);

        var read = new MemoryStream();
        var buffer = new byte[333];
        int count;
        while ((count = await stream.ReadAsync(buffer, CancellationToken.None)) > 0)
        {
            stream.Position.ShouldBe(read.Length + count);
            read.Write(buffer, 0, count);
        }

        read.ToArray().ShouldBe(data);
        stream.BytesRead.ShouldBe(data.Length);
        stream.Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(data)));
        (await stream.ReadAsync(buffer, CancellationToken.None)).ShouldBe(0);
    }

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_of_an_empty_source_ends_at_once_with_the_empty_digest()
    {
        await using var stream = new ReadAheadHashingStream(new MemoryStream(), chunkSize: 1000, depth: 2);
        (await stream.ReadAsync(new byte[10], CancellationToken.None)).ShouldBe(0);
        stream.Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData([])));
    }

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_rethrows_the_sources_own_exception()
    {
        var failure = new IOException("disk gone");
        await using var stream = new ReadAheadHashingStream(new FailingStream(ArchiveTestData.RandomBytes(5000, 2), failAfter: 2500, failure), chunkSize: 1000, depth: 2);
        var buffer = new byte[700];
        var thrown = await Should.ThrowAsync<IOException>(async () =>
        {
            while (await stream.ReadAsync(buffer, CancellationToken.None) > 0)
            {
            }
        });
        thrown.ShouldBeSameAs(failure);
        stream.BytesRead.ShouldBeLessThanOrEqualTo(2500);
    }

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_closes_its_source_unless_told_to_leave_it_open()
    {
        var data = ArchiveTestData.RandomBytes(5000, 5);
        var kept = new MemoryStream(data);
        await using (var stream = new ReadAheadHashingStream(kept, chunkSize: 1000, depth: 2, leaveOpen: true))
        {
            (await stream.ReadAsync(new byte[10], CancellationToken.None)).ShouldBe(10);
        }

        kept.CanRead.ShouldBeTrue();
        kept.Position = 0;
        kept.ToArray().ShouldBe(data);
        (await kept.ReadAsync(new byte[10], CancellationToken.None)).ShouldBe(10);

        var closed = new MemoryStream(data);
        await using (new ReadAheadHashingStream(closed, chunkSize: 1000, depth: 2))
        {
        }

        closed.CanRead.ShouldBeFalse("by default the source is disposed with the stream");
    }

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_of_a_source_without_length_reads_it_all_and_hashes_it()
    {
        var data = ArchiveTestData.RandomBytes(10_007, 6);
        // Reads shorter than a chunk: the producer must fill each chunk from several, and stop only at a read of 0.
        await using var stream = new ReadAheadHashingStream(new NonSeekableStream(data, maxRead: 333), chunkSize: 1000, depth: 2);
        stream.CanSeek.ShouldBeFalse();
        Should.Throw<NotSupportedException>(() => stream.Length);
        Should.Throw<NotSupportedException>(() => stream.Seek(1, SeekOrigin.End));

        var read = new MemoryStream();
        await stream.CopyToAsync(read, CancellationToken.None);

        read.ToArray().ShouldBe(data);
        stream.Position.ShouldBe(data.Length);
        stream.BytesRead.ShouldBe(data.Length);
        stream.Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(data)));
        Should.Throw<NotSupportedException>(() => stream.Length);
    }

    [Fact(Timeout = 30_000)]
    public async Task Read_ahead_without_hashing_hands_over_the_same_bytes_and_has_no_digest()
    {
        var data = ArchiveTestData.RandomBytes(10_007, 7);
        await using var stream = new ReadAheadHashingStream(new MemoryStream(data), chunkSize: 1000, depth: 2, hash: false);
        stream.Length.ShouldBe(data.Length);

        var read = new MemoryStream();
        await stream.CopyToAsync(read, CancellationToken.None);

        read.ToArray().ShouldBe(data);
        stream.BytesRead.ShouldBe(data.Length);
        Should.Throw<InvalidOperationException>(() => stream.Sha256).Message.ShouldContain("without hashing");
    }

    [Fact(Timeout = 30_000)]
    public async Task Write_behind_writes_every_byte_in_order_and_hashes_them()
    {
        var data = ArchiveTestData.RandomBytes(25_013, 3);
        var destination = new MemoryStream();
        await using var stream = new WriteBehindHashingStream(destination, chunkSize: 1024, depth: 2, leaveOpen: true);
        var offset = 0;
        var size = 1;
        while (offset < data.Length)
        {
            var count = Math.Min(size, data.Length - offset);
            // Both paths: libzstd's synchronous end of frame writes through Write, the rest through WriteAsync.
            if (size % 2 == 0)
            {
                stream.Write(data, offset, count);
            }
            else
            {
                await stream.WriteAsync(data.AsMemory(offset, count), CancellationToken.None);
            }

            offset += count;
            size = size * 3 % 4099;
        }

        Should.Throw<InvalidOperationException>(() => stream.Sha256);
        await stream.CompleteAsync(CancellationToken.None);
        destination.ToArray().ShouldBe(data);
        stream.BytesWritten.ShouldBe(data.Length);
        stream.Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(data)));
        await Should.ThrowAsync<InvalidOperationException>(async () => await stream.WriteAsync(new byte[1], CancellationToken.None));
    }

    [Fact(Timeout = 30_000)]
    public async Task Write_behind_to_a_file_appends_after_what_is_there_and_starts_writeback_without_losing_bytes()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("blob");
        var data = ArchiveTestData.RandomBytes(50_000, 4);
        await using (var file = DurableFileSystem.CreatePrivateFile(path, bufferSize: 4096))
        {
            // The writeback ranges start at the file's position, not at 0.
            await file.WriteAsync(new byte[] { 1, 2, 3 }, CancellationToken.None);
            await file.FlushAsync(CancellationToken.None);
            await using var stream = new WriteBehindHashingStream(file, chunkSize: 8192, depth: 2, leaveOpen: true);
            await stream.WriteAsync(data, CancellationToken.None);
            await stream.CompleteAsync(CancellationToken.None);
            stream.Sha256.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(data)));
            file.Flush(flushToDisk: true);
        }

        (await File.ReadAllBytesAsync(path)).ShouldBe([1, 2, 3, .. data]);
    }

    [Fact(Timeout = 30_000)]
    public async Task Write_behind_rethrows_a_full_destination_as_the_same_exception()
    {
        var failure = new IOException("No space left on device", Enospc);
        await using var stream = new WriteBehindHashingStream(new FailingStream([], failAfter: 3000, failure), chunkSize: 1024, depth: 2, leaveOpen: false);
        var thrown = await Should.ThrowAsync<IOException>(async () =>
        {
            // Far more than the destination takes and the queue holds: the writer must not wait for room forever.
            for (var i = 0; i < 1000; i++)
            {
                await stream.WriteAsync(new byte[1000], CancellationToken.None);
            }

            await stream.CompleteAsync(CancellationToken.None);
        });
        thrown.ShouldBeSameAs(failure);
        thrown.HResult.ShouldBe(Enospc);
    }

    [Fact(Timeout = 30_000)]
    public async Task Write_behind_disposed_without_completing_stops_and_writes_no_more()
    {
        var destination = new MemoryStream();
        var stream = new WriteBehindHashingStream(destination, chunkSize: 1024, depth: 2, leaveOpen: true);
        await stream.WriteAsync(new byte[100], CancellationToken.None);
        await stream.DisposeAsync();
        destination.Length.ShouldBe(0, "a partial chunk of an abandoned stream is discarded");
        Should.Throw<ObjectDisposedException>(() => stream.Write(new byte[1]));
    }

    /// <summary>Reads from or takes writes of <c>failAfter</c> bytes, then throws the given exception.</summary>
    private sealed class FailingStream(byte[] content, int failAfter, Exception failure) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => true;

        public override long Length => content.Length;

        public override long Position
        {
            get => _position;
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var take = Math.Min(count, Math.Min(content.Length, failAfter) - _position);
            if (take <= 0)
            {
                if (_position >= failAfter)
                {
                    throw failure;
                }

                return 0;
            }

            Array.Copy(content, _position, buffer, offset, take);
            _position += take;
            return take;
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (_position + count > failAfter)
            {
                throw failure;
            }

            _position += count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
