using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Archive;

/// <summary>Source-generated JSON for PodMigrate's own files (camelCase) and checkpointctl's config.dump.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CheckpointManifest))]
[JsonSerializable(typeof(ContainerConfigDump))]
internal sealed partial class CheckpointJsonContext : JsonSerializerContext;

/// <summary>Source-generated JSON for files in CRI's (Go protobuf struct) shape: snake_case.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerStatusDump))]
internal sealed partial class CriJsonContext : JsonSerializerContext;

/// <summary>Reading and writing the JSON files of a checkpoint; unreadable content is DataLoss naming the file.</summary>
public static class ArchiveJson
{
    public static byte[] SerializeManifest(CheckpointManifest manifest)
        => JsonSerializer.SerializeToUtf8Bytes(manifest, CheckpointJsonContext.Default.CheckpointManifest);

    public static CheckpointManifest DeserializeManifest(ReadOnlySpan<byte> json, string source)
    {
        var manifest = Deserialize(json, CheckpointJsonContext.Default.CheckpointManifest, source);
        if (Malformed(manifest) is { } why)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{source} is not a valid {nameof(CheckpointManifest)}: {why}");
        }

        if (manifest.FormatVersion != CheckpointManifest.CurrentFormatVersion)
        {
            throw new PodMigrateException(ErrorKind.FailedPrecondition,
                $"{source}: manifest format version {manifest.FormatVersion} is not supported (this build reads {CheckpointManifest.CurrentFormatVersion})");
        }

        return manifest;
    }

    /// <summary>
    /// What System.Text.Json lets through that the readers rely on: JSON null (or a missing constructor argument) where
    /// the types say non-null, and duplicate paths. Found by the archive fuzzer ("codec": {} crashed the reader).
    /// </summary>
    private static string? Malformed(CheckpointManifest manifest)
    {
        if (manifest.CheckpointId is null || manifest.ArchiveSha256 is null || manifest.Codec?.Name is null || manifest.Files is null || manifest.Labels is null)
        {
            return "checkpointId, archiveSha256, codec.name, files and labels must not be null";
        }

        var paths = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in manifest.Files)
        {
            if (entry?.Path is null)
            {
                return "a file entry or its path is null";
            }

            if (!paths.Add(entry.Path))
            {
                return $"file \"{entry.Path}\" is listed twice";
            }
        }

        return null;
    }

    public static byte[] SerializeConfigDump(ContainerConfigDump config)
        => JsonSerializer.SerializeToUtf8Bytes(config, CheckpointJsonContext.Default.ContainerConfigDump);

    public static ContainerConfigDump DeserializeConfigDump(ReadOnlySpan<byte> json, string source)
        => Deserialize(json, CheckpointJsonContext.Default.ContainerConfigDump, source);

    public static byte[] SerializeStatusDump(ContainerStatusDump status)
        => JsonSerializer.SerializeToUtf8Bytes(status, CriJsonContext.Default.ContainerStatusDump);

    public static ContainerStatusDump DeserializeStatusDump(ReadOnlySpan<byte> json, string source)
        => Deserialize(json, CriJsonContext.Default.ContainerStatusDump, source);

    private static T Deserialize<T>(ReadOnlySpan<byte> json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(json, type) ?? throw new JsonException("the document is null");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{source} is not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }
}
