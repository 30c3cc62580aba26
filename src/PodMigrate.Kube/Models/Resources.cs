using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>metav1.ListMeta.</summary>
public sealed class ListMeta
{
    public string? ResourceVersion { get; set; }

    [JsonPropertyName("continue")]
    public string? Continue { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>Any list the API returns (PodList, NodeList, a custom resource list…): the items are typed by <typeparamref name="T"/>.</summary>
public sealed class KubeList<T>
{
    public string? ApiVersion { get; set; }

    public string? Kind { get; set; }

    public ListMeta Metadata { get; set; } = new();

    public List<T> Items { get; set; } = [];

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>
/// A custom resource (or any object without a typed model): metadata is typed, spec and status stay JSON
/// so that a controller can bind them to its own types and nothing the server sent is lost.
/// </summary>
public sealed class CustomResource
{
    public string? ApiVersion { get; set; }

    public string? Kind { get; set; }

    public ObjectMeta Metadata { get; set; } = new();

    public JsonElement? Spec { get; set; }

    public JsonElement? Status { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>metav1.Status: what the API server answers on failure (and for some deletions).</summary>
public sealed class KubeStatus
{
    public string? ApiVersion { get; set; }

    public string? Kind { get; set; }

    /// <summary>"Success" or "Failure".</summary>
    public string? Status { get; set; }

    public string? Message { get; set; }

    /// <summary>NotFound, AlreadyExists, Conflict, Expired, Gone, Invalid, Unauthorized…</summary>
    public string? Reason { get; set; }

    public int? Code { get; set; }

    public KubeStatusDetails? Details { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class KubeStatusDetails
{
    public string? Name { get; set; }

    public string? Group { get; set; }

    public string? Kind { get; set; }

    public string? Uid { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>metav1.DeleteOptions.</summary>
public sealed class DeleteOptions
{
    public string ApiVersion { get; set; } = "v1";

    public string Kind { get; set; } = "DeleteOptions";

    public long? GracePeriodSeconds { get; set; }

    public Preconditions? Preconditions { get; set; }

    /// <summary>Orphan, Background or Foreground.</summary>
    public string? PropagationPolicy { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class Preconditions
{
    public string? Uid { get; set; }

    public string? ResourceVersion { get; set; }
}

/// <summary>core/v1 Namespace.</summary>
public sealed class KubeNamespace
{
    public string? ApiVersion { get; set; } = "v1";

    public string? Kind { get; set; } = "Namespace";

    public ObjectMeta Metadata { get; set; } = new();

    public JsonElement? Spec { get; set; }

    public JsonElement? Status { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
