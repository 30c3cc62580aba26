using System.Text;
using PodMigrate.Core.Archive;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Tests.Archive;

/// <summary>One temporary directory per test, removed afterwards.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("pm-archive-test-").FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>Test inputs: data of both kinds and a staged checkpoint directory in the Kubernetes layout.</summary>
internal static class ArchiveTestData
{
    /// <summary>Incompressible bytes.</summary>
    public static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>JSON-log-like lines with random fields: compresses about 5x, like a real heap of text.</summary>
    public static byte[] CompressibleBytes(int length, int seed)
    {
        var random = new Random(seed);
        var builder = new StringBuilder(length + 200);
        while (builder.Length < length)
        {
            builder.Append("{\"id\":").Append(random.Next()).Append(",\"user\":\"alice\",\"req\":\"GET /api/v1/items/")
                .Append(random.Next(1000)).Append("\",\"status\":200,\"ms\":").Append(random.Next(500)).Append("}\n");
        }

        return Encoding.ASCII.GetBytes(builder.ToString(0, length));
    }

    /// <summary>
    /// A staged checkpoint: checkpoint/ with CRIU-like images (a multi-MiB pages image), config.dump, spec.dump,
    /// status.dump, dump.log, an empty file and a nested directory (no links: archives refuse them).
    /// </summary>
    public static string CreateStagedCheckpoint(string root, int pagesBytes = 3 << 20)
    {
        Directory.CreateDirectory(root);
        var images = Path.Combine(root, CheckpointLayout.CheckpointDirectory);
        Directory.CreateDirectory(images);
        File.WriteAllBytes(Path.Combine(images, "pages-1.img"), RandomBytes(pagesBytes, 1));
        File.WriteAllBytes(Path.Combine(images, "mm-42.img"), CompressibleBytes(200_000, 2));
        File.WriteAllBytes(Path.Combine(images, "inventory.img"), RandomBytes(77, 3));
        File.WriteAllBytes(Path.Combine(images, "empty.img"), []);
        Directory.CreateDirectory(Path.Combine(images, "nested", "deeper"));
        File.WriteAllText(Path.Combine(images, "nested", "deeper", "note.txt"), "hello");
        File.WriteAllBytes(Path.Combine(root, CheckpointLayout.ConfigDumpFile), ArchiveJson.SerializeConfigDump(new ContainerConfigDump
        {
            Id = "0123456789abcdef",
            Name = "counter",
            RootfsImageName = "localhost:5000/podmigrate/counter:1",
            Runtime = "io.containerd.runc.v2",
            CreatedTime = DateTimeOffset.UnixEpoch,
            CheckpointedTime = DateTimeOffset.UnixEpoch.AddDays(1),
        }));
        File.WriteAllText(Path.Combine(root, CheckpointLayout.SpecDumpFile), "{\"ociVersion\":\"1.1.0\",\"annotations\":{}}");
        File.WriteAllText(Path.Combine(root, CheckpointLayout.DumpLogFile), "(00.000000) Dumping finished successfully\n");
        return root;
    }

    /// <summary>Every entry under a directory as relative path -> (kind, content or link target), for comparing trees.</summary>
    public static SortedDictionary<string, string> Snapshot(string root)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(root, path).Replace('\\', '/');
            result[relative] = FileKinds.Of(path) switch
            {
                FileKind.Directory => "dir",
                FileKind.Symlink => "link:" + new FileInfo(path).LinkTarget,
                FileKind.Regular => "file:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path))),
                var other => other.ToString(),
            };
        }

        return result;
    }

    /// <summary>Flips one bit of the byte at <paramref name="offset"/> (negative: from the end).</summary>
    public static void FlipByte(string path, long offset)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        stream.Position = offset >= 0 ? offset : stream.Length + offset;
        var value = stream.ReadByte();
        stream.Position--;
        stream.WriteByte((byte)(value ^ 0x01));
    }

    /// <summary>Cuts a file to <paramref name="length"/> bytes.</summary>
    public static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
    }
}
