using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Codecs;

namespace PodMigrate.Core.Archive;

/// <summary>
/// podmigrate.manifest.json, stored beside the archive blob: what was checkpointed, how it was packed, and the digest of
/// the blob and of every entry inside it, so a reader verifies everything before anything is used.
/// </summary>
public sealed record CheckpointManifest
{
    public const int CurrentFormatVersion = 1;

    public int FormatVersion { get; init; } = CurrentFormatVersion;

    public required string CheckpointId { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    public string? SourceNode { get; init; }

    public PodReference? Pod { get; init; }

    public ContainerReference? Container { get; init; }

    public string? ImageReference { get; init; }

    public string? CriuVersion { get; init; }

    public string? Runtime { get; init; }

    public required CodecSettings Codec { get; init; }

    /// <summary>Bytes of the uncompressed tar.</summary>
    public long RawSize { get; init; }

    /// <summary>Bytes of the archive blob as stored.</summary>
    public long CompressedSize { get; init; }

    /// <summary>Lowercase hex sha256 of the archive blob as stored.</summary>
    public required string ArchiveSha256 { get; init; }

    /// <summary>Every entry of the tar, in archive order.</summary>
    public IReadOnlyList<ManifestEntry> Files { get; init; } = [];

    public Dictionary<string, string> Labels { get; init; } = [];

    /// <summary>A pinned checkpoint is never removed by retention, nor deleted without force.</summary>
    public bool Pinned { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>The pod a checkpoint came from.</summary>
public sealed record PodReference(string Namespace, string Name, string? Uid = null)
{
    public override string ToString() => $"{Namespace}/{Name}";
}

/// <summary>The container a checkpoint came from.</summary>
public sealed record ContainerReference(string Name, string? Id = null);

[JsonConverter(typeof(JsonStringEnumConverter<ManifestEntryType>))]
public enum ManifestEntryType
{
    File,
    Directory,
    Symlink,
}

/// <summary>One tar entry: relative path with '/' separators; size and sha256 for files, target for symlinks.</summary>
public sealed record ManifestEntry
{
    public required string Path { get; init; }

    public ManifestEntryType Type { get; init; }

    /// <summary>Permission bits as they were in the source (octal when written by a person: 0600 = 384).</summary>
    public int Mode { get; init; }

    public long Size { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Sha256 { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? LinkTarget { get; init; }
}
