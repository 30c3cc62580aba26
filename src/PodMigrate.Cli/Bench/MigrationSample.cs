using PodMigrate.Agent.V1;

namespace PodMigrate.Cli.Bench;

/// <summary>
/// Ours: the agent's checkpoint on the source, as its result reports it, and the target agent's restores of that one
/// checkpoint, one per restore method.
/// </summary>
internal sealed record OursSample(
    string Codec,
    IReadOnlyDictionary<string, TimeSpan> CheckpointPhases,
    TimeSpan CheckpointTotal,
    TimeSpan Frozen,
    long RawBytes,
    long ArchiveBytes,
    IReadOnlyList<RestoreSample> Restores)
{
    public static IReadOnlyDictionary<string, TimeSpan> PhasesOf(IEnumerable<PhaseTiming> timings)
        => timings.GroupBy(t => t.Phase.ToString().Replace("Phase", "", StringComparison.Ordinal).ToLowerInvariant())
            .ToDictionary(g => g.Key, g => TimeSpan.FromTicks(g.Sum(t => t.Duration.ToTimeSpan().Ticks)));
}

/// <summary>
/// One restore of ours with one method (its CLI name: cri-image, direct): the phases and total its result reports, the
/// downtime of a migration that restores this way, and whether the restored memory has the source's digest.
/// </summary>
internal sealed record RestoreSample(string Method, IReadOnlyDictionary<string, TimeSpan> Phases, TimeSpan Total, TimeSpan Downtime, bool DigestMatches);

/// <summary>One run on one memhog pod: the floor and ours (one per codec, each restored with every method) on the same workload.</summary>
internal sealed record MigrationSample(int SizeMib, int Repeat, FloorDump FloorDump, FloorRestore FloorRestore, bool FloorDigestMatches, IReadOnlyList<OursSample> Ours);
