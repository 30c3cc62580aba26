using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>core/v1 Secret. <see cref="Data"/> is base64 on the wire and bytes here (System.Text.Json decodes it).</summary>
public sealed class Secret
{
    public const string ApiVersionV1 = "v1";
    public const string KindName = "Secret";

    /// <summary>A certificate and its key (tls.crt, tls.key; ca.crt by convention when the CA travels along).</summary>
    public const string TlsType = "kubernetes.io/tls";

    public string? ApiVersion { get; set; } = ApiVersionV1;

    public string? Kind { get; set; } = KindName;

    public ObjectMeta Metadata { get; set; } = new();

    public string? Type { get; set; }

    public Dictionary<string, byte[]>? Data { get; set; }

    /// <summary>Write-only convenience of the API: merged into <see cref="Data"/> by the server.</summary>
    public Dictionary<string, string>? StringData { get; set; }

    public bool? Immutable { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}
