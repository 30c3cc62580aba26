using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Errors;

namespace PodMigrate.Node.Containerd;

/// <summary>An OCI content descriptor (manifest, config, layer or index entry).</summary>
public sealed record OciDescriptor(
    [property: JsonPropertyName("mediaType")] string MediaType,
    [property: JsonPropertyName("digest")] string Digest,
    [property: JsonPropertyName("size")] long Size,
    [property: JsonPropertyName("platform")] OciPlatform? Platform = null,
    [property: JsonPropertyName("annotations")] IReadOnlyDictionary<string, string>? Annotations = null);

public sealed record OciPlatform(
    [property: JsonPropertyName("architecture")] string Architecture,
    [property: JsonPropertyName("os")] string Os,
    [property: JsonPropertyName("variant")] string? Variant = null);

/// <summary>An image manifest or an image index / manifest list (the fields of both, told apart by which are set).</summary>
public sealed record OciManifestOrIndex(
    [property: JsonPropertyName("mediaType")] string? MediaType,
    [property: JsonPropertyName("config")] OciDescriptor? Config,
    [property: JsonPropertyName("layers")] IReadOnlyList<OciDescriptor>? Layers,
    [property: JsonPropertyName("manifests")] IReadOnlyList<OciDescriptor>? Manifests,
    [property: JsonPropertyName("annotations")] IReadOnlyDictionary<string, string>? Annotations);

public sealed record OciImageConfig(
    [property: JsonPropertyName("architecture")] string? Architecture = null,
    [property: JsonPropertyName("os")] string? Os = null,
    [property: JsonPropertyName("config")] OciImageRuntimeConfig? Config = null,
    [property: JsonPropertyName("rootfs")] OciRootFs? RootFs = null);

public sealed record OciImageRuntimeConfig(
    [property: JsonPropertyName("Entrypoint")] IReadOnlyList<string>? Entrypoint = null,
    [property: JsonPropertyName("Cmd")] IReadOnlyList<string>? Cmd = null,
    [property: JsonPropertyName("Env")] IReadOnlyList<string>? Env = null,
    [property: JsonPropertyName("WorkingDir")] string? WorkingDir = null,
    [property: JsonPropertyName("User")] string? User = null);

public sealed record OciRootFs(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("diff_ids")] IReadOnlyList<string> DiffIds);

/// <summary>
/// What it takes to run a container from an image: its manifest (with its layers and annotations), its config, and the
/// snapshot its layers unpack to.
/// </summary>
public sealed record ResolvedImage(
    string Name,
    OciDescriptor Manifest,
    OciImageConfig Config,
    string ChainId,
    IReadOnlyList<OciDescriptor>? Layers = null,
    IReadOnlyDictionary<string, string>? Annotations = null,
    OciDescriptor? ConfigDescriptor = null);

[JsonSerializable(typeof(OciManifestOrIndex))]
[JsonSerializable(typeof(OciImageConfig))]
internal sealed partial class OciImageJsonContext : JsonSerializerContext;

public static class OciImageMediaTypes
{
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;
}

internal static class OciImageJson
{
    public static T Parse<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string subject)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new PodMigrateException(ErrorKind.DataLoss, $"{subject} is null");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{subject} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>
    /// The identity of the committed snapshot the layers unpack to (OCI image spec "ChainID"):
    /// chain(L0) = diff(L0); chain(L0..n) = sha256(chain(L0..n-1) + " " + diff(Ln)).
    /// </summary>
    public static string ChainId(IReadOnlyList<string> diffIds)
    {
        ArgumentNullException.ThrowIfNull(diffIds);
        if (diffIds.Count == 0)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, "the image config lists no layers (rootfs.diff_ids is empty)");
        }
        var chain = diffIds[0];
        for (var i = 1; i < diffIds.Count; i++)
        {
            chain = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{chain} {diffIds[i]}")));
        }
        return chain;
    }
}
