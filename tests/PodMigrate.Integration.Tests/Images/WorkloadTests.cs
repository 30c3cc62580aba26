using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using PodMigrate.Core.Images;
using PodMigrate.TestKit.Registry;

namespace PodMigrate.Integration.Tests.Images;

/// <summary>
/// The test workloads for real: compiled with gcc, run as plain processes on a free port, built into images and
/// pushed to a private registry under the names the rest of PodMigrate relies on.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Gcc")]
[SupportedOSPlatform("linux")]
public sealed class WorkloadTests : IAsyncLifetime, IDisposable
{
    private const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    private readonly string _dir = Directory.CreateTempSubdirectory("pm-workloads-").FullName;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(120));
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly List<Process> _processes = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }

            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await process.WaitForExitAsync(grace.Token);
            process.Dispose();
        }

        Directory.Delete(_dir, recursive: true);
    }

    public void Dispose()
    {
        _http.Dispose();
        _timeout.Dispose();
    }

    [Fact(Timeout = 120_000)]
    public async Task Counter_counts_in_memory_serves_the_value_and_writes_its_file()
    {
        var port = LocalRegistry.FreeTcpPort();
        var file = Path.Combine(_dir, "count");
        var counter = await StartAsync(WorkloadImages.Counter, new() { ["PORT"] = $"{port}", ["COUNTER_FILE"] = file, ["COUNTER_INTERVAL_MS"] = "20" });
        var url = new Uri($"http://127.0.0.1:{port}/");

        var first = await WaitForAsync(async () => long.Parse(await _http.GetStringAsync(url, _timeout.Token)), v => v >= 3);
        var fromFile = long.Parse(await File.ReadAllTextAsync(file, _timeout.Token));
        var later = await WaitForAsync(async () => long.Parse(await _http.GetStringAsync(url, _timeout.Token)), v => v >= first + 5);

        fromFile.ShouldBeInRange(first, later);
        (await _http.GetStringAsync(new Uri(url, "healthz"), _timeout.Token)).ShouldBe("ok\n");
        (await _http.GetAsync(new Uri(url, "nope"), _timeout.Token)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        // Looked at once it stopped: while it runs, a listing can catch count.tmp between its write and its rename (20 ms).
        await StopAsync(counter);
        Directory.GetFiles(_dir, "count*").ShouldBe([file], "the temp file of the atomic write must not linger");
    }

    /// <summary>
    /// A workload frozen by a checkpoint is still probed (a readiness probe a second, for as long as a rollback takes): the
    /// kernel must queue those connections until it thaws, and it must answer all of them then. With a listen backlog of 16
    /// the queue overflowed, the refused connections completed late by retransmission with their request still to come, and
    /// each stalled the one-request-at-a-time loop for its receive timeout: a source resumed after a rollback stopped
    /// answering for seconds (PodMigrationEndToEndTests' target-agent-down test failed on it).
    /// </summary>
    [Fact(Timeout = 120_000)]
    public async Task A_stopped_counter_queues_every_connection_and_answers_each_once_it_runs_again()
    {
        const int connections = 64;
        var port = LocalRegistry.FreeTcpPort();
        var counter = await StartAsync(WorkloadImages.Counter, new() { ["PORT"] = $"{port}", ["COUNTER_FILE"] = Path.Combine(_dir, "count") });
        await WaitForAsync(() => _http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/healthz"), _timeout.Token), s => s == "ok\n");

        var sockets = new List<Socket>();
        try
        {
            Kill(counter.Id, SigStop).ShouldBe(0);
            while (sockets.Count < connections)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                using var connect = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token);
                connect.CancelAfter(TimeSpan.FromSeconds(1));
                try
                {
                    await socket.ConnectAsync(IPAddress.Loopback, port, connect.Token);
                }
                catch (OperationCanceledException) when (!_timeout.IsCancellationRequested)
                {
                    // The kernel dropped the handshake: the listen queue is full.
                    socket.Dispose();
                    break;
                }
                await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray(), _timeout.Token);
                sockets.Add(socket);
            }
            sockets.Count.ShouldBe(connections, "a stopped workload's listen queue must hold every probe made while it is frozen");
        }
        finally
        {
            Kill(counter.Id, SigCont).ShouldBe(0);
        }

        var thawed = Stopwatch.StartNew();
        var buffer = new byte[256];
        foreach (var socket in sockets)
        {
            using (socket)
            {
                using var answer = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token);
                answer.CancelAfter(TimeSpan.FromSeconds(5));
                var read = await socket.ReceiveAsync(buffer, answer.Token);
                System.Text.Encoding.ASCII.GetString(buffer, 0, read).ShouldStartWith("HTTP/1.0 200");
            }
        }
        thawed.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(2), "every queued request is answered at once, none waits out a silent one");
        await StopAsync(counter);
    }

    [Fact(Timeout = 120_000)]
    public async Task Memhog_verifies_its_pattern_and_serves_a_stable_digest_of_its_memory()
    {
        const int mib = 4;
        const ulong seed = 7;
        var port = LocalRegistry.FreeTcpPort();
        var status = Path.Combine(_dir, "memhog.status");
        var memhog = await StartAsync(
            WorkloadImages.Memhog,
            new() { ["PORT"] = $"{port}", ["MEMHOG_MIB"] = $"{mib}", ["MEMHOG_SEED"] = $"{seed}", ["MEMHOG_STATUS_FILE"] = status });
        var url = new Uri($"http://127.0.0.1:{port}/");

        var line = await WaitForAsync(() => _http.GetStringAsync(url, _timeout.Token), s => s.StartsWith("ok passes=", StringComparison.Ordinal) && Passes(s) >= 2);
        line.ShouldEndWith($" mib={mib} seed={seed}\n");
        (await File.ReadAllTextAsync(status, _timeout.Token)).ShouldStartWith("ok passes=");

        var digest = await _http.GetStringAsync(new Uri(url, "digest"), _timeout.Token);
        var again = await _http.GetStringAsync(new Uri(url, "digest"), _timeout.Token);
        again.ShouldBe(digest);
        digest.ShouldBe($"{ExpectedDigest(mib, seed):x16}\n", "the digest must be FNV-1a 64 of the documented pattern");
        await StopAsync(memhog);
    }

    [Fact(Timeout = 120_000)]
    public async Task Memhog_text_pattern_is_the_documented_json_lines()
    {
        const int mib = 2;
        const ulong seed = 7;
        var port = LocalRegistry.FreeTcpPort();
        var memhog = await StartAsync(
            WorkloadImages.Memhog,
            new()
            {
                ["PORT"] = $"{port}", ["MEMHOG_MIB"] = $"{mib}", ["MEMHOG_SEED"] = $"{seed}", ["MEMHOG_PATTERN"] = "text",
                ["MEMHOG_STATUS_FILE"] = Path.Combine(_dir, "memhog-text.status"),
            });
        var url = new Uri($"http://127.0.0.1:{port}/");

        await WaitForAsync(() => _http.GetStringAsync(url, _timeout.Token), s => s.StartsWith("ok passes=", StringComparison.Ordinal) && Passes(s) >= 1);
        var digest = await _http.GetStringAsync(new Uri(url, "digest"), _timeout.Token);
        digest.ShouldBe($"{ExpectedTextDigest(mib, seed):x16}\n", "the digest must be FNV-1a 64 of the documented JSON lines");
        await StopAsync(memhog);
    }

    [Fact(Timeout = 120_000)]
    public async Task Build_workloads_pushes_pause_counter_and_memhog_reproducibly()
    {
        await using var registry = await LocalRegistry.StartAsync(_timeout.Token);
        var options = new WorkloadBuildOptions(Sources(), Path.Combine(_dir, "out"), registry.Host);

        var images = await WorkloadImages.BuildAndPushAsync(options, registry.Client, _timeout.Token);

        images.Select(i => i.Image.Name.ToString()).ShouldBe(
            [$"{registry.Host}/podmigrate/pause:1", $"{registry.Host}/podmigrate/counter:1", $"{registry.Host}/podmigrate/memhog:1"]);
        foreach (var image in images)
        {
            (await registry.Client.GetManifestAsync(image.Image.Name, _timeout.Token)).Digest.ShouldBe(image.Image.ManifestDigest);
        }

        var layout = OciLayout.Open(Path.Combine(options.OutputDirectory, "layout"));
        (await ListAsync(layout, images[0].Image)).ShouldBe(["pause"]);
        var counter = await ListAsync(layout, images[1].Image);
        counter.ShouldBe(["bin/", "bin/busybox", "bin/cat", "bin/ls", "bin/sh", "bin/sleep", "bin/wget", "tmp/", "counter"]);
        images[2].Image.Layers[0].Descriptor.Digest.ShouldBe(images[1].Image.Layers[0].Descriptor.Digest, "counter and memhog share the busybox layer");

        var rebuilt = await WorkloadImages.BuildAndPushAsync(options with { OutputDirectory = Path.Combine(_dir, "again") }, registry.Client, _timeout.Token);
        rebuilt.Select(i => i.Image.ManifestDigest).ShouldBe(images.Select(i => i.Image.ManifestDigest));
        rebuilt.ShouldAllBe(i => i.Push!.BlobsUploaded == 0);
    }

    private static int Passes(string status) => int.Parse(status.Split(' ')[1]["passes=".Length..]);

    /// <summary>memhog's text pattern: 64-byte JSON log lines from splitmix64(seed + j), space-padded, newline-terminated.</summary>
    private static ulong ExpectedTextDigest(int mib, ulong seed)
    {
        uint[] statuses = [200, 200, 200, 201, 204, 304, 404, 500];
        var hash = 0xcbf29ce484222325UL;
        for (ulong j = 0; j < (ulong)mib << 14; j++)
        {
            var h = SplitMix64(seed + j);
            var line = $"{{\"id\":{j},\"user\":\"user{h % 50:00}\",\"status\":{statuses[(h >> 8) % 8]},\"ms\":{(h >> 16) % 1000}}}".PadRight(63) + "\n";
            foreach (var b in System.Text.Encoding.ASCII.GetBytes(line))
            {
                hash = (hash ^ b) * 0x100000001b3UL;
            }
        }
        return hash;
    }

    private static ulong SplitMix64(ulong x)
    {
        x += 0x9e3779b97f4a7c15UL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
    }

    /// <summary>memhog's documented digest: FNV-1a 64 over the words splitmix64(seed + i), little-endian.</summary>
    private static ulong ExpectedDigest(int mib, ulong seed)
    {
        var hash = 0xcbf29ce484222325UL;
        Span<byte> word = stackalloc byte[8];
        for (ulong i = 0; i < (ulong)mib << 17; i++)
        {
            var x = seed + i + 0x9e3779b97f4a7c15UL;
            x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
            x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(word, x ^ (x >> 31));
            foreach (var b in word)
            {
                hash = (hash ^ b) * 0x100000001b3UL;
            }
        }

        return hash;
    }

    /// <summary>tests/workloads of this checkout, found from this source file's own path.</summary>
    private static string Sources([CallerFilePath] string thisFile = "")
        => WorkloadImages.LocateSources(null, Environment.GetEnvironmentVariable(WorkloadImages.SourcesEnvironmentVariable), [Path.GetDirectoryName(thisFile)!, AppContext.BaseDirectory]);

    private async Task<Process> StartAsync(Workload workload, Dictionary<string, string> environment)
    {
        var binary = await WorkloadImages.CompileAsync(workload, Sources(), Path.Combine(_dir, "bin"), "gcc", _timeout.Token);
        var startInfo = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }

        var process = Process.Start(startInfo)!;
        _processes.Add(process);
        return process;
    }

    /// <summary>SIGTERM, then the workload must exit 0 promptly: that is how a runtime stops it.</summary>
    private async Task StopAsync(Process process)
    {
        Kill(process.Id, SigTerm).ShouldBe(0);
        using var grace = CancellationTokenSource.CreateLinkedTokenSource(_timeout.Token);
        grace.CancelAfter(TimeSpan.FromSeconds(5));
        await process.WaitForExitAsync(grace.Token);
        process.ExitCode.ShouldBe(0);
    }

    /// <summary>Polls until <paramref name="done"/> holds (with backoff, bounded by the test's timeout); connection errors mean "not yet".</summary>
    private async Task<T> WaitForAsync<T>(Func<Task<T>> read, Func<T, bool> done)
    {
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            foreach (var process in _processes.Where(p => p.HasExited))
            {
                throw new InvalidOperationException($"workload pid {process.Id} exited with {process.ExitCode}: {await process.StandardError.ReadToEndAsync(_timeout.Token)}");
            }

            try
            {
                var value = await read();
                if (done(value))
                {
                    return value;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(delay, _timeout.Token);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 200));
        }
    }

    /// <summary>The entry names of an image's layers, in layer order.</summary>
    private async Task<List<string>> ListAsync(OciLayout layout, BuiltImage image)
    {
        var names = new List<string>();
        foreach (var layer in image.Layers)
        {
            await using var gunzip = new GZipStream(layout.OpenBlob(layer.Descriptor.ParsedDigest), CompressionMode.Decompress);
            await using var tar = new TarReader(gunzip);
            while (await tar.GetNextEntryAsync(copyData: false, _timeout.Token) is { } entry)
            {
                names.Add(entry.Name);
                if (entry.Name == "tmp/")
                {
                    entry.Mode.ShouldBe((UnixFileMode)0b1_111_111_111);
                }
                else if (entry.Name is "bin/sh")
                {
                    entry.LinkName.ShouldBe("busybox");
                }
                else if (entry.Name is "counter" or "pause" or "bin/busybox")
                {
                    entry.Mode.ShouldBe((UnixFileMode)0b111_101_101);
                }
            }
        }

        return names;
    }

    // DllImport, not LibraryImport: the generated stub needs unsafe code, which this test project does not enable.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
