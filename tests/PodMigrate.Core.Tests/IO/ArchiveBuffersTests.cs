using System.Runtime.CompilerServices;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Tests.IO;

/// <summary>
/// The archive pipeline's pool keeps at most <see cref="ArchiveBuffers.MaxPooledPerSize"/> arrays of a size, whatever a
/// burst rented: the rest are garbage once returned (weak references show which arrays are still reachable).
/// </summary>
[Trait("Category", "Unit")]
public sealed class ArchiveBuffersTests
{
    private const int Chunk = ArchiveBuffers.MaxPooledLength;

    [Fact]
    public void After_a_burst_the_pool_keeps_at_most_its_bound_of_chunks()
    {
        var pool = ArchiveBuffers.CreatePool();
        var burst = 3 * ArchiveBuffers.MaxPooledPerSize;

        var chunks = RentAndReturn(pool, burst);
        CollectGarbage();

        chunks.Count(c => c.TryGetTarget(out _)).ShouldBe(ArchiveBuffers.MaxPooledPerSize);
    }

    [Fact]
    public void A_steady_load_within_the_bound_reuses_the_same_chunks_after_a_burst()
    {
        var pool = ArchiveBuffers.CreatePool();
        var kept = Enumerable.Range(0, 3 * ArchiveBuffers.MaxPooledPerSize).Select(_ => pool.Rent(Chunk)).ToList();
        foreach (var chunk in kept)
        {
            pool.Return(chunk);
        }

        // One checkpoint's worth (the bound) rented and returned again and again: never a new array.
        for (var round = 0; round < 20; round++)
        {
            var rented = Enumerable.Range(0, ArchiveBuffers.MaxPooledPerSize).Select(_ => pool.Rent(Chunk)).ToList();
            rented.ShouldAllBe(c => kept.Any(k => ReferenceEquals(k, c)));
            foreach (var chunk in rented)
            {
                pool.Return(chunk);
            }
        }

        // One more than the bound: the pool has no more to give, the extra one is new.
        var over = Enumerable.Range(0, ArchiveBuffers.MaxPooledPerSize + 1).Select(_ => pool.Rent(Chunk)).ToList();
        over.Count(c => kept.Any(k => ReferenceEquals(k, c))).ShouldBe(ArchiveBuffers.MaxPooledPerSize);
    }

    [Fact]
    public void Arrays_larger_than_a_chunk_are_not_kept()
    {
        var pool = ArchiveBuffers.CreatePool();

        var chunks = RentAndReturn(pool, 4, Chunk + 1);
        CollectGarbage();

        chunks.Count(c => c.TryGetTarget(out _)).ShouldBe(0);
    }

    // In a method of its own so that no local keeps an array alive for the collection that follows.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<WeakReference<byte[]>> RentAndReturn(System.Buffers.ArrayPool<byte> pool, int count, int length = Chunk)
    {
        var rented = Enumerable.Range(0, count).Select(_ => pool.Rent(length)).ToList();
        foreach (var chunk in rented)
        {
            pool.Return(chunk);
        }

        return rented.Select(c => new WeakReference<byte[]>(c)).ToList();
    }

    private static void CollectGarbage()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }
}
