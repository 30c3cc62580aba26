using System.Security.Cryptography;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.IO;

[Trait("Category", "Unit")]
public sealed class GrowingFilesHasherTests
{
    private const int Timeout = 30_000;
    private const string Pattern = "pages-*.img";

    private static FileDigest DigestOf(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return new FileDigest(bytes.Length, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>Opened like CRIU's writes: appended to unbuffered, without a lock that keeps readers out.</summary>
    private static FileStream OpenForAppend(string path)
        => new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);

    [Fact(Timeout = Timeout)]
    public async Task Files_written_while_followed_get_the_digest_of_their_final_content()
    {
        using var temp = new TempDirectory();
        var first = temp.Combine("pages-1.img");
        var second = temp.Combine("pages-2.img");
        var other = temp.Combine("pagemap-1.img");
        await File.WriteAllBytesAsync(first, ArchiveTestData.RandomBytes(10_000, 21));

        await using var hasher = new GrowingFilesHasher(temp.Path, Pattern);
        var writer = Task.Run(async () =>
        {
            var random = new Random(22);
            await using (var firstFile = OpenForAppend(first))
            {
                for (var i = 0; i < 5; i++)
                {
                    await firstFile.WriteAsync(ArchiveTestData.RandomBytes(random.Next(1, 200_000), 100 + i));
                    await Task.Delay(3);
                }

                // The second appears only now, while the first is still open and growing.
                await using var secondFile = OpenForAppend(second);
                await using var otherFile = OpenForAppend(other);
                for (var i = 0; i < 5; i++)
                {
                    // One chunk larger than the hasher's 1 MiB reads.
                    await secondFile.WriteAsync(ArchiveTestData.RandomBytes(i == 2 ? 1_500_000 : random.Next(1, 100_000), 200 + i));
                    await firstFile.WriteAsync(ArchiveTestData.RandomBytes(random.Next(1, 50_000), 300 + i));
                    await otherFile.WriteAsync(ArchiveTestData.RandomBytes(1000, 400 + i));
                    await Task.Delay(3);
                }
            }
        });
        await writer;

        var digests = await hasher.CompleteAsync(CancellationToken.None);

        digests.Keys.Order(StringComparer.Ordinal).ShouldBe(["pages-1.img", "pages-2.img"]);
        digests["pages-1.img"].ShouldBe(DigestOf(first));
        digests["pages-2.img"].ShouldBe(DigestOf(second));
        digests["pages-2.img"].Size.ShouldBeGreaterThan(1_500_000);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_file_there_when_complete_is_called_is_never_missed()
    {
        using var temp = new TempDirectory();
        // Many rounds, each creating its file at another moment of the watcher's polling.
        for (var round = 0; round < 20; round++)
        {
            var directory = temp.Combine($"round-{round}");
            Directory.CreateDirectory(directory);
            await using var hasher = new GrowingFilesHasher(directory, Pattern);
            if (round % 2 == 1)
            {
                await Task.Delay(round % 5);
            }

            var path = Path.Combine(directory, "pages-1.img");
            await File.WriteAllBytesAsync(path, ArchiveTestData.RandomBytes(1000 + round, round));
            var digests = await hasher.CompleteAsync(CancellationToken.None);

            digests.Keys.ShouldBe(["pages-1.img"], $"round {round}");
            digests["pages-1.img"].ShouldBe(DigestOf(path), $"round {round}");
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task A_directory_without_matching_files_gives_no_digests()
    {
        using var temp = new TempDirectory();
        await using (var hasher = new GrowingFilesHasher(temp.Path, Pattern))
        {
            (await hasher.CompleteAsync(CancellationToken.None)).ShouldBeEmpty();
        }

        await File.WriteAllBytesAsync(temp.Combine("pagemap-1.img"), [1, 2, 3]);
        await File.WriteAllBytesAsync(temp.Combine("core-1.img"), [4]);
        await using (var hasher = new GrowingFilesHasher(temp.Path, Pattern))
        {
            (await hasher.CompleteAsync(CancellationToken.None)).ShouldBeEmpty();
        }
    }

    [Fact(Timeout = Timeout)]
    public async Task Disposing_without_completing_returns_promptly()
    {
        using var temp = new TempDirectory();
        var path = temp.Combine("pages-1.img");
        await using var file = OpenForAppend(path);
        await file.WriteAsync(new byte[100_000]);
        var hasher = new GrowingFilesHasher(temp.Path, Pattern);
        // Long enough for the watcher to find the file and its follower to wait for more.
        await Task.Delay(50);

        await hasher.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        await hasher.DisposeAsync();
        // The writer is not disturbed.
        await file.WriteAsync(new byte[10]);
        file.Length.ShouldBe(100_010);
    }
}
