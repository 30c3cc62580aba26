using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>coordination.k8s.io/v1 Lease: leader election.</summary>
public sealed class Lease
{
    public const string ApiVersionV1 = "coordination.k8s.io/v1";

    public string? ApiVersion { get; set; } = ApiVersionV1;

    public string? Kind { get; set; } = "Lease";

    public ObjectMeta Metadata { get; set; } = new();

    public LeaseSpec Spec { get; set; } = new();

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class LeaseSpec
{
    public string? HolderIdentity { get; set; }

    public int? LeaseDurationSeconds { get; set; }

    /// <summary>MicroTime: RFC 3339 with microseconds.</summary>
    [JsonConverter(typeof(MicroTimeJsonConverter))]
    public DateTimeOffset? AcquireTime { get; set; }

    [JsonConverter(typeof(MicroTimeJsonConverter))]
    public DateTimeOffset? RenewTime { get; set; }

    public int? LeaseTransitions { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
