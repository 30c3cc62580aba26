using System.Text;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Fuzz.Harnesses;
using SharpFuzz;

// podmigrate-fuzz: run <harness> (under afl-fuzz, via scripts/fuzz.sh) | replay <harness> <file or dir>... | seeds <dir>
// Harnesses: archive, paths, runtime-cmdline (the runtime's argv parser: RuntimeCommandLineChecks).
namespace PodMigrate.Fuzz;

internal static class Program
{
    private static readonly string[] Harnesses = ["archive", "paths", "runtime-cmdline"];

    private static int Main(string[] args)
    {
        RuntimeCommandLineHarness.Parse = Runtime.RuntimeCommandLineChecks.Check;
        switch (args)
        {
            case ["run", var harness] when Harnesses.Contains(harness):
                var run = HarnessFor(harness);
                Fuzzer.Run(stream =>
                {
                    using var buffer = new MemoryStream();
                    stream.CopyTo(buffer);
                    run(buffer.ToArray());
                });
                return 0;
            case ["replay", var harness, .. var inputs] when Harnesses.Contains(harness) && inputs.Length > 0:
                return Replay(HarnessFor(harness), inputs);
            case ["seeds", var directory]:
                WriteSeeds(directory);
                return 0;
            case ["wired", var harness] when Harnesses.Contains(harness):
                // For scripts/fuzz.sh: 0 when the harness has a target in this build.
                return harness != "runtime-cmdline" || RuntimeCommandLineHarness.IsWired ? 0 : 1;
            default:
                Console.Error.WriteLine($"usage: podmigrate-fuzz run|wired <harness> | replay <harness> <input>... | seeds <dir>   (harnesses: {string.Join(", ", Harnesses)})");
                return 2;
        }
    }

    private static Action<byte[]> HarnessFor(string harness) => harness switch
    {
        "archive" => ScratchFor(harness) is var scratch ? input => ArchiveHarness.Run(input, scratch) : throw new InvalidOperationException(),
        "paths" => input => PathsHarness.Run(input),
        _ => input => RuntimeCommandLineHarness.Run(input),
    };

    /// <summary>Per-process scratch directory (tmpfs unless PODMIGRATE_FUZZ_SCRATCH says otherwise).</summary>
    private static string ScratchFor(string harness)
        => Path.Combine(Environment.GetEnvironmentVariable("PODMIGRATE_FUZZ_SCRATCH") ?? "/dev/shm", $"podmigrate-fuzz-{harness}-{Environment.ProcessId}");

    private static int Replay(Action<byte[]> harness, string[] inputs)
    {
        var files = inputs.SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p) : [p]).Order(StringComparer.Ordinal).ToList();
        var failed = 0;
        foreach (var file in files)
        {
            try
            {
                harness(File.ReadAllBytes(file));
                Console.WriteLine($"ok    {file}");
            }
#pragma warning disable CA1031 // A replay reports every failing input, whatever it throws.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failed++;
                Console.WriteLine($"FAIL  {file}: {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace);
            }
        }

        Console.WriteLine($"{files.Count} inputs, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>Tiny seed corpora, the archives made by the project's own writer.</summary>
    private static void WriteSeeds(string directory)
    {
        var archive = Directory.CreateDirectory(Path.Combine(directory, "archive")).FullName;
        var source = Directory.CreateTempSubdirectory("podmigrate-fuzz-seed-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(source, "core.img"), "core");
            Directory.CreateDirectory(Path.Combine(source, "d"));
            File.WriteAllText(Path.Combine(source, "d", "f"), "xy");
            var single = Directory.CreateTempSubdirectory("podmigrate-fuzz-seed-").FullName;
            File.WriteAllText(Path.Combine(single, "a"), "a");
            try
            {
                byte mode = 0;
                foreach (var codec in new[] { CheckpointCodecs.NoneName, CheckpointCodecs.GzipName, CheckpointCodecs.ZstdName })
                {
                    foreach (var (tree, label) in new[] { (source, "tree"), (single, "single") })
                    {
                        var (blob, manifest) = Write(tree, codec);
                        File.WriteAllBytes(Path.Combine(archive, $"{codec}-{label}"), [mode, .. blob]);
                        File.WriteAllBytes(Path.Combine(archive, $"verified-{codec}-{label}"), ArchiveHarness.VerifiedInput(manifest, blob));
                    }

                    mode++;
                }
            }
            finally
            {
                Directory.Delete(single, recursive: true);
            }
        }
        finally
        {
            Directory.Delete(source, recursive: true);
        }

        var paths = Directory.CreateDirectory(Path.Combine(directory, "paths")).FullName;
        string[] pathSeeds = ["ck-20261206-194900-0a1b2c3d", "./d/f\n../core.img", "inventory/pages-1.img\n../x", "a/b/c/\nb/../c", "/etc/passwd\n/etc", "a/../b\n..", "z\n."];
        for (var i = 0; i < pathSeeds.Length; i++)
        {
            File.WriteAllText(Path.Combine(paths, $"seed-{i}"), pathSeeds[i]);
        }

        var runtime = Directory.CreateDirectory(Path.Combine(directory, "runtime-cmdline")).FullName;
        string[] runtimeSeeds =
        [
            "--root\0/run/containerd/runc/k8s.io\0--log\0/x/log.json\0--log-format\0json\0create\0--bundle\0/b\0--pid-file\0/b/pid\0id1",
            "--root=/r\0start\0id1", "delete\0--force\0id1",
            "--root\0/r\0--log\0/b/log.json\0--log-format=json\0--systemd-cgroup\0create\0-b\0/b\0--console-socket=/s.sock\0--no-pivot\0--no-new-keyring\0--preserve-fds\u00000\0--\0c",
            "--debug\0--criu\0/usr/sbin/criu\0-rootless=auto\0exec\0--process\0/p.json\0--detach\0--pid-file\0/p\0c",
            "--root\0/r\0state\0c", "kill\0--all\0c\u00009", "--version",
        ];
        for (var i = 0; i < runtimeSeeds.Length; i++)
        {
            File.WriteAllText(Path.Combine(runtime, $"seed-{i}"), runtimeSeeds[i]);
        }
    }

    private static (byte[] Blob, byte[] Manifest) Write(string source, string codec)
    {
        using var blob = new MemoryStream();
        var settings = CheckpointCodecs.Resolve(codec, level: null);
        var result = CheckpointArchiveWriter.WriteAsync(source, blob, settings, null, CancellationToken.None).GetAwaiter().GetResult();
        var manifest = new CheckpointManifest
        {
            CheckpointId = "ck-seed",
            Codec = settings,
            RawSize = result.RawSize,
            CompressedSize = result.CompressedSize,
            ArchiveSha256 = result.ArchiveSha256,
            Files = result.Files,
        };
        // Compact JSON: the manifest is part of every input, and AFL works best on small ones.
        var json = Encoding.UTF8.GetString(ArchiveJson.SerializeManifest(manifest));
        var compact = System.Text.Json.Nodes.JsonNode.Parse(json)!.ToJsonString();
        return (blob.ToArray(), Encoding.UTF8.GetBytes(compact));
    }
}
