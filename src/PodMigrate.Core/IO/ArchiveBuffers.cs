using System.Buffers;

namespace PodMigrate.Core.IO;

/// <summary>
/// The one pool of the archive pipeline's buffers: the 1 MiB chunks of the write-behind, read-ahead and hashing stages
/// and the zstd streams' staging buffers. It is bounded: it keeps at most <see cref="MaxPooledPerSize"/> arrays of each
/// size, what one checkpoint and one restore have in flight at once (a write-behind and a read-ahead of depth 4 hold
/// 6 chunks each, the growing-files hasher one per page file); a burst that rents more (concurrent migrations) gets new
/// arrays, and those beyond the bound are left to the GC when they come back. So an agent's steady state does not depend
/// on how many chunks were in flight at its busiest moment.
/// <c>ArrayPool&lt;byte&gt;.Shared</c>, used before, keeps up to 32 arrays per size per core plus one per thread, and
/// lets them go only when a gen2 GC finds them unused for a minute, which a migration every few seconds never allows:
/// its 1 MiB chunks filled the agent's large-object heap slowly for as long as the soak ran (README, Load and soak).
/// </summary>
internal static class ArchiveBuffers
{
    /// <summary>The largest array the pool keeps (the pipeline's chunk); larger rents are plain allocations.</summary>
    public const int MaxPooledLength = 1 << 20;

    /// <summary>How many arrays of one size the pool keeps at most.</summary>
    public const int MaxPooledPerSize = 16;

    /// <summary>The pool every archive stage rents from and returns to.</summary>
    public static ArrayPool<byte> Pool { get; } = CreatePool();

    /// <summary>A pool with the bounds above (the tests take their own, apart from the process's archive work).</summary>
    public static ArrayPool<byte> CreatePool() => ArrayPool<byte>.Create(MaxPooledLength, MaxPooledPerSize);
}
