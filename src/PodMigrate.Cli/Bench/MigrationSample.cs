using PodMigrate.Agent.V1;

namespace PodMigrate.Cli.Bench;

/// <summary>Ours: the agent's checkpoint on the source and restore on the target, as their results report them.</summary>
internal sealed record OursSample(
    string Codec,
    IReadOnlyDictionary<string, TimeSpan> CheckpointPhases,
    TimeSpan CheckpointTotal,
    TimeSpan Frozen,
    TimeSpan Downtime,
    long RawBytes,
    long ArchiveBytes,
    IReadOnlyDictionary<string, TimeSpan> RestorePhases,
    TimeSpan RestoreTotal,
    bool DigestMatches)
{
    public static IReadOnlyDictionary<string, TimeSpan> PhasesOf(IEnumerable<PhaseTiming> timings)
        => timings.GroupBy(t => t.Phase.ToString().Replace("Phase", "", StringComparison.Ordinal).ToLowerInvariant())
            .ToDictionary(g => g.Key, g => TimeSpan.FromTicks(g.Sum(t => t.Duration.ToTimeSpan().Ticks)));
}

/// <summary>One run on one memhog pod: the floor and ours (one row per codec) on the same workload.</summary>
internal sealed record MigrationSample(int SizeMib, int Repeat, FloorDump FloorDump, FloorRestore FloorRestore, bool FloorDigestMatches, IReadOnlyList<OursSample> Ours);
