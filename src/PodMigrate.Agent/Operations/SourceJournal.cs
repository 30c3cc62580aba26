using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.IO;

namespace PodMigrate.Agent.Operations;

/// <summary>Why the agent holds a source container frozen.</summary>
internal enum HoldReason
{
    /// <summary>A checkpoint is in progress: an agent that finds this at start-up died mid-operation and resumes it.</summary>
    Checkpointing,

    /// <summary>
    /// The archive is being published (recorded before the manifest's rename, for SOURCE_LEAVE_STOPPED and SOURCE_STOP):
    /// the publication is the commit point. An agent that finds this at start-up asks the share: a published checkpoint
    /// keeps its source held (as <see cref="LeftStopped"/>), an unpublished one resumes it, an unreadable share leaves it held.
    /// </summary>
    Publishing,

    /// <summary>Frozen on purpose (SOURCE_LEAVE_STOPPED) until Resume or Discard: kept across agent restarts.</summary>
    LeftStopped,

    /// <summary>
    /// The checkpoint was sealed before it was durable (seal_early; recorded before the seal): a target may already run
    /// from it, so the agent never resumes the source on its own, not after a failed publication and not at start-up.
    /// A published one is then held as <see cref="LeftStopped"/>; an unpublished one waits for the caller's Resume.
    /// </summary>
    Sealed,
}

internal sealed record HeldSource(
    string ContainerId,
    string ContainerdNamespace,
    HoldReason Reason,
    string CheckpointId,
    DateTimeOffset Since);

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(List<HeldSource>))]
internal sealed partial class SourceJournalJsonContext : JsonSerializerContext;

/// <summary>
/// The containers this agent has frozen, on the node's disk, written before a freeze and removed after the resume:
/// the next agent start reads it to release what a dead agent left frozen. Writes are atomic (temp + fsync + rename).
/// </summary>
internal sealed class SourceJournal : IDisposable
{
    private readonly string _path;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<string, HeldSource> _entries;

    public SourceJournal(string stateDirectory)
    {
        Directory.CreateDirectory(stateDirectory);
        _path = Path.Combine(stateDirectory, "held-sources.json");
        _entries = Load(_path).ToDictionary(e => e.ContainerId, StringComparer.Ordinal);
    }

    public async Task<IReadOnlyList<HeldSource>> EntriesAsync(CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            return [.. _entries.Values];
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task<HeldSource?> FindAsync(string containerId, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            return _entries.GetValueOrDefault(containerId);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Durable when it returns: written before the freeze it announces.</summary>
    public Task RecordAsync(HeldSource entry, CancellationToken cancellationToken)
        => UpdateAsync(entries => entries[entry.ContainerId] = entry, cancellationToken);

    public Task RemoveAsync(string containerId, CancellationToken cancellationToken)
        => UpdateAsync(entries => entries.Remove(containerId), cancellationToken);

    public void Dispose() => _lock.Dispose();

    private async Task UpdateAsync(Action<Dictionary<string, HeldSource>> change, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            change(_entries);
            var json = JsonSerializer.SerializeToUtf8Bytes([.. _entries.Values.OrderBy(e => e.ContainerId, StringComparer.Ordinal)], SourceJournalJsonContext.Default.ListHeldSource);
            await DurableFileSystem.WriteFileAtomicallyAsync(_path, json, cancellationToken);
        }
        finally
        {
            _lock.Release();
        }
    }

    private static List<HeldSource> Load(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }
        return JsonSerializer.Deserialize(File.ReadAllBytes(path), SourceJournalJsonContext.Default.ListHeldSource) ?? [];
    }
}
