using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Errors;

namespace PodMigrate.Node.Containerd;

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

// The OCI models themselves are Core's (PodMigrate.Core.Images.OciModels); this context reads them as containerd stores them.
[JsonSerializable(typeof(OciManifestOrIndex))]
[JsonSerializable(typeof(OciImageConfig))]
internal sealed partial class OciImageJsonContext : JsonSerializerContext;

/// <summary>Kept for containerd's image resolution; the media types are <see cref="OciMediaTypes"/>'s.</summary>
public static class OciImageMediaTypes
{
    public static bool IsIndex(string mediaType) => OciMediaTypes.IsIndex(mediaType);
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
