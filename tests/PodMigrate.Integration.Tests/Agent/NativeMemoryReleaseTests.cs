using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.Memory;
using PodMigrate.Core.Diagnostics;
using Xunit.Abstractions;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// Why the soak's agents grew (~50 MiB each over 177 migrations) and what gives it back: native memory freed by the
/// threads that used it (libzstd's contexts and workers do this per checkpoint) stays resident in glibc's arenas; the
/// agent's <see cref="NativeMemoryRelease"/> returns it. Runs in this process against the real glibc.
/// </summary>
[Trait("Category", "Unit")]
[Collection(ProcessMemoryMeasurements.Name)]
public sealed class NativeMemoryReleaseTests(ITestOutputHelper output)
{
    private const int Chunk = 64 * 1024;
    private const int ChunksPerThread = 384;
    private const int Threads = 4;
    private const long FreedKiB = (long)Chunk * ChunksPerThread * Threads / 1024; // 96 MiB

    [Fact]
    public void Freed_native_memory_stays_resident_until_the_release_gives_it_back()
    {
        var release = new NativeMemoryRelease(new NativeMemoryReleaseOptions { GrowthKiB = 8 * 1024 }, TimeProvider.System, NullLogger<NativeMemoryRelease>.Instance);
        ProcessMemory.ReleaseFreeNativeMemory();
        release.Check().ShouldBe(0); // the baseline
        var guards = new List<nint>();
        try
        {
            var start = ProcessMemory.Current().AnonKiB;
            // Each thread fills its arena with chunks, each followed by a small block that stays: the chunks' memory is in
            // the middle of the heap, which free() never gives back (as libzstd's buffers sit between later allocations).
            var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
            {
                var chunks = new List<nint>();
                var kept = new List<nint>();
                for (var i = 0; i < ChunksPerThread; i++)
                {
                    var chunk = Marshal.AllocHGlobal(Chunk);
                    for (var offset = 0; offset < Chunk; offset += 4096)
                    {
                        Marshal.WriteByte(chunk, offset, 1);
                    }
                    chunks.Add(chunk);
                    kept.Add(Marshal.AllocHGlobal(64));
                }
                chunks.ForEach(Marshal.FreeHGlobal);
                lock (guards)
                {
                    guards.AddRange(kept);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());

            // All freed, still resident: the soak's growth.
            var freed = ProcessMemory.Current().AnonKiB;
            (freed - start).ShouldBeGreaterThan(FreedKiB / 2, $"anon RSS {start} -> {freed} KiB after freeing {FreedKiB} KiB");

            var watch = System.Diagnostics.Stopwatch.StartNew();
            var released = release.Check();
            watch.Stop();
            var after = ProcessMemory.Current().AnonKiB;
            output.WriteLine($"anon RSS {start} KiB, {freed} KiB with {FreedKiB} KiB freed, {after} KiB after a release of {released} KiB in {watch.Elapsed.TotalMilliseconds:F1} ms");
            released.ShouldBeGreaterThan(FreedKiB / 2, $"anon RSS {freed} -> {after} KiB");
            (after - start).ShouldBeLessThan(FreedKiB / 4, $"anon RSS {start} before, {after} KiB after the release");
        }
        finally
        {
            guards.ForEach(Marshal.FreeHGlobal);
        }
    }

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
