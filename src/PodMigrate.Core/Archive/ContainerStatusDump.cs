using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Core.Archive;

/// <summary>
/// status.dump: the CRI ContainerStatus as containerd 2.x writes it (Go's json of the cri-api struct: snake_case,
/// times in Unix nanoseconds, the state as its enum number). Only what PodMigrate reads; the rest is kept in <see cref="Extra"/>.
/// </summary>
public sealed record ContainerStatusDump
{
    public string? Id { get; init; }

    public ContainerMetadataDump? Metadata { get; init; }

    /// <summary>CRI ContainerState: 0 created, 1 running, 2 exited, 3 unknown.</summary>
    public int State { get; init; }

    public long CreatedAt { get; init; }

    public long StartedAt { get; init; }

    public long FinishedAt { get; init; }

    public ImageSpecDump? Image { get; init; }

    public string? ImageRef { get; init; }

    public Dictionary<string, string>? Labels { get; init; }

    public Dictionary<string, string>? Annotations { get; init; }

    public string? LogPath { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>CRI ContainerMetadata.</summary>
public sealed record ContainerMetadataDump
{
    public string? Name { get; init; }

    public uint Attempt { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>CRI ImageSpec.</summary>
public sealed record ImageSpecDump
{
    public string? Image { get; init; }

    public string? UserSpecifiedImage { get; init; }

    public Dictionary<string, string>? Annotations { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}
