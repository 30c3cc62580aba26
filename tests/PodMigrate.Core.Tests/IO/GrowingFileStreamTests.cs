using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.IO;

/// <summary>
/// <see cref="GrowingFileStream"/> over a file another stream still appends to: it waits at the current end until the
/// writer publishes the final length or gives up, and its waits end with the caller's cancellation. Its polls are on the
/// real clock here (10 ms each); every wait of a test is on a condition with a deadline, never on a sleep.
/// </summary>
[Trait("Category", "Unit")]
public sealed class GrowingFileStreamTests
{
    private const int Timeout = 30_000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    /// <summary>A writer as the store's: a FileStream holding .NET's exclusive advisory lock, unbuffered so a write is in the file.</summary>
    private static FileStream OpenWriter(string path)
        => new(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0);

    private sealed class Publication
    {
        public long? FinalLength { get; set; }

        public bool Writing { get; set; } = true;
    }

    private static GrowingFileStream Follow(string path, Publication publication)
        => new(DurableFileSystem.TryOpenReadWhileWritten(path) ?? throw new FileNotFoundException(path), () => publication.FinalLength,
            () => publication.Writing, "ck-growing", TimeProvider.System);

    [Fact(Timeout = Timeout)]
    public async Task Reads_what_is_appended_waits_at_the_end_and_stops_at_the_published_length()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("archive.tar.zst");
        var first = ArchiveTestData.RandomBytes(70_000, 1);
        var second = ArchiveTestData.RandomBytes(90_000, 2);
        var publication = new Publication();
        await using var writer = OpenWriter(path);
        await writer.WriteAsync(first);
        await using var growing = Follow(path, publication);

        var read = new MemoryStream();
        var buffer = new byte[16 << 10];
        while (read.Length < first.Length)
        {
            var n = await growing.ReadAsync(buffer).AsTask().WaitAsync(Wait);
            n.ShouldBeGreaterThan(0);
            read.Write(buffer, 0, n);
        }
        // At the end, with the writer still at it and nothing published: the read can only wait.
        var pending = growing.ReadAsync(buffer).AsTask();
        pending.IsCompleted.ShouldBeFalse();

        await writer.WriteAsync(second);
        publication.FinalLength = first.Length + second.Length;
        var next = await pending.WaitAsync(Wait);
        next.ShouldBeGreaterThan(0);
        read.Write(buffer, 0, next);
        int more;
        while ((more = await growing.ReadAsync(buffer).AsTask().WaitAsync(Wait)) > 0)
        {
            read.Write(buffer, 0, more);
        }

        read.ToArray().ShouldBe(first.Concat(second).ToArray());
        growing.Position.ShouldBe(first.Length + second.Length);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_writer_that_gives_up_without_publishing_fails_the_reader_as_aborted()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("archive.tar.zst");
        var publication = new Publication();
        await using var writer = OpenWriter(path);
        await writer.WriteAsync(ArchiveTestData.RandomBytes(1_000, 4));
        await using var growing = Follow(path, publication);
        (await growing.ReadAsync(new byte[4_096]).AsTask().WaitAsync(Wait)).ShouldBe(1_000);
        var pending = growing.ReadAsync(new byte[4_096]).AsTask();
        pending.IsCompleted.ShouldBeFalse();

        publication.Writing = false;
        var failure = await Should.ThrowAsync<PodMigrateException>(() => pending.WaitAsync(Wait));
        failure.Kind.ShouldBe(ErrorKind.Aborted, failure.Message);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_published_length_shorter_than_what_was_read_is_data_loss()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("archive.tar.zst");
        var publication = new Publication();
        await using var writer = OpenWriter(path);
        await writer.WriteAsync(ArchiveTestData.RandomBytes(1_000, 5));
        await using var growing = Follow(path, publication);
        (await growing.ReadAsync(new byte[4_096]).AsTask().WaitAsync(Wait)).ShouldBe(1_000);
        var pending = growing.ReadAsync(new byte[4_096]).AsTask();

        publication.FinalLength = 500;
        var failure = await Should.ThrowAsync<PodMigrateException>(() => pending.WaitAsync(Wait));
        failure.Kind.ShouldBe(ErrorKind.DataLoss, failure.Message);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_callers_cancellation_ends_the_wait_on_a_stalled_writer()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("archive.tar.zst");
        await using var writer = OpenWriter(path);
        await using var growing = Follow(path, new Publication());
        using var cancel = new CancellationTokenSource();
        var pending = growing.ReadAsync(new byte[4_096], cancel.Token).AsTask();
        pending.IsCompleted.ShouldBeFalse();

        await cancel.CancelAsync();
        var failure = await Record.ExceptionAsync(() => pending.WaitAsync(Wait));
        failure.ShouldBeAssignableTo<OperationCanceledException>(failure?.ToString());
    }
}
