using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Core.Images;

// The JSON documents of the OCI image spec, reduced to the fields PodMigrate writes or reads.
// Property order is declaration order, and dictionaries are sorted where they are made, so the
// same image always serialises to the same bytes (and therefore the same digest). The fields only read
// (a descriptor's platform, the config's user, the manifest-or-index shape) come last and are null when written.
// These are the solution's one set of OCI image models: containerd's image resolution reads them too.

public sealed record OciDescriptor(
    [property: JsonPropertyName("mediaType")] string MediaType,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("size")] long Size)
{
    [JsonPropertyName("annotations")]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>Set on an index's entries: the platform the manifest is for.</summary>
    [JsonPropertyName("platform")]
    public OciPlatform? Platform { get; init; }

    [JsonIgnore]
    public OciDigest ParsedDigest => OciDigest.Parse(Digest);
}

public sealed record OciPlatform(
    [property: JsonPropertyName("architecture")] string Architecture,
    [property: JsonPropertyName("os")] string Os,
    [property: JsonPropertyName("variant")] string? Variant = null);

public sealed record OciManifest(
    [property: JsonPropertyName("schemaVersion")] int SchemaVersion,
    [property: JsonPropertyName("mediaType")] string? MediaType,
    [property: JsonPropertyName("config")] OciDescriptor Config,
    [property: JsonPropertyName("layers")] IReadOnlyList<OciDescriptor> Layers)
{
    [JsonPropertyName("annotations")]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

public sealed record OciIndex(
    [property: JsonPropertyName("schemaVersion")] int SchemaVersion,
    [property: JsonPropertyName("mediaType")] string? MediaType,
    [property: JsonPropertyName("manifests")] IReadOnlyList<OciDescriptor> Manifests)
{
    [JsonPropertyName("annotations")]
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>An image manifest or an image index / manifest list as read (the fields of both, told apart by which are set).</summary>
public sealed record OciManifestOrIndex(
    [property: JsonPropertyName("mediaType")] string? MediaType,
    [property: JsonPropertyName("config")] OciDescriptor? Config,
    [property: JsonPropertyName("layers")] IReadOnlyList<OciDescriptor>? Layers,
    [property: JsonPropertyName("manifests")] IReadOnlyList<OciDescriptor>? Manifests,
    [property: JsonPropertyName("annotations")] IReadOnlyDictionary<string, string>? Annotations);

/// <summary>
/// The image config; the nested <c>config</c> keys are PascalCase in the spec, the outer ones are not. Every field may be
/// absent from an image read from elsewhere; the images PodMigrate writes set them all.
/// </summary>
public sealed record OciImageConfig(
    [property: JsonPropertyName("architecture")] string? Architecture = null,
    [property: JsonPropertyName("os")] string? Os = null,
    [property: JsonPropertyName("config")] OciContainerConfig? Config = null,
    [property: JsonPropertyName("rootfs")] OciRootFs? RootFs = null);

public sealed record OciContainerConfig
{
    [JsonPropertyName("Env")]
    public IReadOnlyList<string>? Env { get; init; }

    [JsonPropertyName("Entrypoint")]
    public IReadOnlyList<string>? Entrypoint { get; init; }

    [JsonPropertyName("Cmd")]
    public IReadOnlyList<string>? Cmd { get; init; }

    [JsonPropertyName("WorkingDir")]
    public string? WorkingDir { get; init; }

    [JsonPropertyName("Labels")]
    public IReadOnlyDictionary<string, string>? Labels { get; init; }

    [JsonPropertyName("User")]
    public string? User { get; init; }
}

public sealed record OciRootFs(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("diff_ids")] IReadOnlyList<string> DiffIds);

public sealed record OciLayoutMarker([property: JsonPropertyName("imageLayoutVersion")] string ImageLayoutVersion);

/// <summary>The body of a registry error response (distribution's <c>{"errors":[…]}</c>).</summary>
internal sealed record RegistryErrorBody([property: JsonPropertyName("errors")] IReadOnlyList<RegistryError>? Errors);

internal sealed record RegistryError(
    [property: JsonPropertyName("code")] string? Code,
    [property: JsonPropertyName("message")] string? Message);

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OciManifest))]
[JsonSerializable(typeof(OciIndex))]
[JsonSerializable(typeof(OciImageConfig))]
[JsonSerializable(typeof(OciLayoutMarker))]
[JsonSerializable(typeof(RegistryErrorBody))]
internal sealed partial class OciJsonContext : JsonSerializerContext;

internal static class OciJson
{
    /// <summary>
    /// The context to use: like <see cref="OciJsonContext.Default"/> but without escaping '+' (as \u002B) in media types,
    /// which is valid JSON yet makes the documents needlessly differ from what other tools write.
    /// </summary>
    public static OciJsonContext Context { get; } = new(new JsonSerializerOptions
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
