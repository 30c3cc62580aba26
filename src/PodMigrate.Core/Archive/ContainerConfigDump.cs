using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Core.Archive;

/// <summary>
/// config.dump: checkpointctl's metadata.ContainerConfig as containerd 2.x and CRI-O write it (camelCase keys).
/// Fields PodMigrate does not know are kept in <see cref="Extra"/> and written back.
/// </summary>
public sealed record ContainerConfigDump
{
    [JsonPropertyName("id")]
    public string Id { get; init; } = "";

    [JsonPropertyName("name")]
    public string Name { get; init; } = "";

    [JsonPropertyName("rootfsImage")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RootfsImage { get; init; }

    [JsonPropertyName("rootfsImageRef")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RootfsImageRef { get; init; }

    [JsonPropertyName("rootfsImageName")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? RootfsImageName { get; init; }

    [JsonPropertyName("runtime")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Runtime { get; init; }

    [JsonPropertyName("createdTime")]
    public DateTimeOffset CreatedTime { get; init; }

    [JsonPropertyName("checkpointedTime")]
    public DateTimeOffset CheckpointedTime { get; init; }

    [JsonPropertyName("restoredTime")]
    public DateTimeOffset RestoredTime { get; init; }

    [JsonPropertyName("restored")]
    public bool Restored { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}
