using Google.Protobuf.WellKnownTypes;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;

namespace PodMigrate.Agent.Restoring;

/// <summary>
/// One restore in progress: the verified checkpoint unpacked in node-local staging, its metadata, and the phase
/// clock. Staging lives under <c>&lt;state&gt;/staging/</c>, which the next agent start empties if this one dies.
/// </summary>
internal sealed class RestoreContext(StoredCheckpoint stored, string staging, Action<Progress> report, TimeProvider time)
{
    private readonly List<PhaseTiming> _timings = [];

    public StoredCheckpoint Stored { get; } = stored;

    public CheckpointId Id => Stored.Id;

    /// <summary>The node-local working directory of this restore.</summary>
    public string Staging { get; } = staging;

    /// <summary>The checkpoint's files in the Kubernetes layout (checkpoint/, spec.dump, config.dump, ...).</summary>
    public string ArchiveDirectory => Path.Combine(Staging, "archive");

    public string CriuImageDirectory => Path.Combine(ArchiveDirectory, CheckpointLayout.CheckpointDirectory);

    public string PathOf(string archiveFile) => Path.Combine(ArchiveDirectory, archiveFile);

    public IReadOnlyList<PhaseTiming> Timings => _timings;

    public void Report(Phase phase, string message) => report(new Progress { Phase = phase, Message = message });

    public void Record(Phase phase, TimeSpan duration) => _timings.Add(new PhaseTiming { Phase = phase, Duration = Duration.FromTimeSpan(duration) });

    /// <summary>Runs one phase, reporting its start and recording how long it took.</summary>
    public async Task<T> PhaseAsync<T>(Phase phase, string message, Func<Task<T>> step)
    {
        Report(phase, message);
        var started = time.GetTimestamp();
        try
        {
            return await step();
        }
        finally
        {
            Record(phase, time.GetElapsedTime(started));
        }
    }

    public Task PhaseAsync(Phase phase, string message, Func<Task> step)
        => PhaseAsync(phase, message, async () =>
        {
            await step();
            return true;
        });

    /// <summary>config.dump of the checkpoint (DataLoss when unreadable, FailedPrecondition when absent).</summary>
    public async Task<ContainerConfigDump> ReadConfigDumpAsync(CancellationToken cancellationToken)
    {
        var path = RequireFile(CheckpointLayout.ConfigDumpFile);
        return ArchiveJson.DeserializeConfigDump(await File.ReadAllBytesAsync(path, cancellationToken), $"{CheckpointLayout.ConfigDumpFile} of checkpoint {Id}");
    }

    public async Task WriteConfigDumpAsync(ContainerConfigDump config, CancellationToken cancellationToken)
        => await File.WriteAllBytesAsync(PathOf(CheckpointLayout.ConfigDumpFile), ArchiveJson.SerializeConfigDump(config), cancellationToken);

    /// <summary>The path of a file the archive must contain; FailedPrecondition naming it when it does not.</summary>
    public string RequireFile(string archiveFile)
    {
        var path = PathOf(archiveFile);
        if (!File.Exists(path))
        {
            throw PodMigrateException.FailedPrecondition($"checkpoint {Id} has no {archiveFile}; it cannot be restored this way");
        }
        return path;
    }
}

/// <summary>What a restore brought up on this node.</summary>
internal sealed record RestoredTarget(string ContainerId, string SandboxId = "", uint Pid = 0, string PodIp = "", string CheckpointImage = "");
