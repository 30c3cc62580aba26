using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.Memory;
using PodMigrate.Core.Diagnostics;
using Xunit.Abstractions;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// Why the soak's agents grew (~50 MiB each over 177 migrations) and what gives it back: native memory freed by the
/// threads that used it (libzstd's contexts and workers do this per checkpoint) stays resident in glibc's arenas; the
/// agent's <see cref="NativeMemoryRelease"/> returns it. Runs in this process against the real glibc. Residency is read
/// for the freed chunks' own pages (mincore), not from the process's RSS: the GC and other threads of the test host move
/// that by tens of MiB at any moment (a fresh-clone run saw +5 MiB of process RSS for 96 MiB freed and resident).
/// </summary>
[Trait("Category", "Unit")]
[Collection(ProcessMemoryMeasurements.Name)]
public sealed partial class NativeMemoryReleaseTests(ITestOutputHelper output)
{
    private const int Chunk = 64 * 1024;
    private const int ChunksPerThread = 384;
    private const int Threads = 4;
    private const int PageSize = 4096;

    [Fact]
    public void Freed_native_memory_stays_resident_until_the_release_gives_it_back()
    {
        var kept = new List<nint>();
        var freed = new List<nint>();
        var residentAfterFree = 0;
        var freedPages = 0;
        try
        {
            // Each thread fills its arena with chunks and frees every other one: each freed chunk lies between two that
            // stay, in the middle of the heap, which free() never gives back (as libzstd's buffers sit between later
            // allocations). Each thread counts its freed chunks' resident pages right after its own frees: another thread
            // of this host may call malloc_trim at any moment (the agents hosted by other tests run NativeMemoryRelease).
            var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
            {
                var chunks = new List<nint>();
                for (var i = 0; i < 2 * ChunksPerThread; i++)
                {
                    var chunk = Marshal.AllocHGlobal(Chunk);
                    for (var offset = 0; offset < Chunk; offset += PageSize)
                    {
                        Marshal.WriteByte(chunk, offset, 1);
                    }
                    chunks.Add(chunk);
                }
                var toFree = chunks.Where((_, i) => i % 2 == 0).ToList();
                toFree.ForEach(Marshal.FreeHGlobal);
                var (resident, pages) = ResidentPagesInside(toFree);
                lock (kept)
                {
                    kept.AddRange(chunks.Where((_, i) => i % 2 == 1));
                    freed.AddRange(toFree);
                    residentAfterFree += resident;
                    freedPages += pages;
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());

            // All freed, still resident: the soak's growth.
            output.WriteLine($"freed: {residentAfterFree} of {freedPages} pages inside the freed chunks resident");
            residentAfterFree.ShouldBeGreaterThan(freedPages * 3 / 4, "pages of freed chunks stay resident until a release");

            var watch = System.Diagnostics.Stopwatch.StartNew();
            ProcessMemory.ReleaseFreeNativeMemory();
            watch.Stop();
            var (after, _) = ResidentPagesInside(freed);
            output.WriteLine($"after the release ({watch.Elapsed.TotalMilliseconds:F1} ms): {after} of {freedPages} pages resident");
            after.ShouldBeLessThan(freedPages / 4, "the release gives the freed chunks' pages back");
        }
        finally
        {
            kept.ForEach(Marshal.FreeHGlobal);
        }
    }

    [Fact]
    public void The_agent_releases_once_its_memory_grew_and_reports_what_came_back()
    {
        var readings = new Queue<long>([100_000, 100_200, 120_000, 101_000, 101_100, 101_050]);
        var release = new NativeMemoryRelease(
            new NativeMemoryReleaseOptions { GrowthKiB = 8 * 1024, ReadAnonKiB = readings.Dequeue },
            TimeProvider.System, NullLogger<NativeMemoryRelease>.Instance);

        release.Check().ShouldBe(0); // 100,000: the baseline
        release.Check().ShouldBe(0); // 100,200: less than the growth, and settled
        release.Check().ShouldBe(19_000); // 120,000: grown by the threshold; released to 101,000
        release.Check().ShouldBe(0); // 101,100: settled right after a release: nothing new to give back
        readings.Count.ShouldBe(1, "each look reads once, a release once more");
    }

    /// <summary>How many of the whole pages inside the given 64 KiB chunks are resident, and how many there are.</summary>
    private static (int Resident, int Pages) ResidentPagesInside(IEnumerable<nint> chunks)
    {
        var resident = 0;
        var pages = 0;
        var vector = new byte[Chunk / PageSize];
        foreach (var chunk in chunks)
        {
            var first = (chunk + PageSize - 1) & ~(nint)(PageSize - 1);
            var end = (chunk + Chunk) & ~(nint)(PageSize - 1);
            var length = (nuint)(end - first);
            if (MinCore(first, length, vector) != 0)
            {
                throw new InvalidOperationException($"mincore failed: errno {Marshal.GetLastPInvokeError()}");
            }
            var count = (int)(length / PageSize);
            pages += count;
            foreach (var state in vector.AsSpan(0, count))
            {
                resident += state & 1;
            }
        }
        return (resident, pages);
    }

    // Test-only: the agent never asks which pages are resident.
    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static partial int MinCore(nint address, nuint length, [Out] byte[] vector);

    [Theory]
    [InlineData(20_000, 20_000, -1, true, false)] // no baseline yet
    [InlineData(20_000, 20_000, 20_000, false, false)] // idle: nothing moved since the last release
    [InlineData(24_000, 20_000, 20_000, true, false)] // working: grown, but less than the threshold, and still moving
    [InlineData(28_192, 26_000, 20_000, true, true)] // grown by the threshold
    [InlineData(60_000, 30_000, 20_000, true, true)]
    [InlineData(24_300, 24_000, 20_000, true, true)] // moved since the last release, now settled: the work ended
    [InlineData(24_300, 24_000, 20_000, false, false)] // settled, but released since it last moved
    public void Releases_after_growth_or_once_the_work_has_settled(long anonKiB, long previousKiB, long baselineKiB, bool changedSinceRelease, bool expected)
        => NativeMemoryRelease.ShouldRelease(anonKiB, previousKiB, baselineKiB, changedSinceRelease, 8 * 1024).ShouldBe(expected);
}

/// <summary>
/// Tests that measure this process's resident memory run alone: another test's allocations and frees in the same
/// process, at the same time, move the figures they assert (a fresh-clone run saw +35 instead of +96 MiB).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessMemoryMeasurements
{
    public const string Name = "Process memory";
}
