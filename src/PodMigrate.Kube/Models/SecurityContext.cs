using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>A container's securityContext (core/v1 SecurityContext): the fields the node applies.</summary>
public sealed class SecurityContext
{
    public Capabilities? Capabilities { get; set; }

    public bool? Privileged { get; set; }

    public long? RunAsUser { get; set; }

    public long? RunAsGroup { get; set; }

    public bool? RunAsNonRoot { get; set; }

    public bool? ReadOnlyRootFilesystem { get; set; }

    public bool? AllowPrivilegeEscalation { get; set; }

    public SeccompProfile? SeccompProfile { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>A pod's securityContext (core/v1 PodSecurityContext): the defaults its containers inherit, and supplemental groups.</summary>
public sealed class PodSecurityContext
{
    public long? RunAsUser { get; set; }

    public long? RunAsGroup { get; set; }

    public bool? RunAsNonRoot { get; set; }

    public List<long>? SupplementalGroups { get; set; }

    public SeccompProfile? SeccompProfile { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class Capabilities
{
    public List<string>? Add { get; set; }

    public List<string>? Drop { get; set; }
}

public sealed class SeccompProfile
{
    public const string RuntimeDefault = "RuntimeDefault";
    public const string Unconfined = "Unconfined";
    public const string Localhost = "Localhost";

    public string Type { get; set; } = "";

    public string? LocalhostProfile { get; set; }
}
