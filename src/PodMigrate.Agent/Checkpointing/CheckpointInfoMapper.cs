using Google.Protobuf.WellKnownTypes;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Store;

namespace PodMigrate.Agent.Checkpointing;

/// <summary>A stored checkpoint's manifest as the API describes it.</summary>
internal static class CheckpointInfoMapper
{
    public static CheckpointInfo ToInfo(StoredCheckpoint stored)
    {
        var manifest = stored.Manifest;
        var info = new CheckpointInfo
        {
            CheckpointId = manifest.CheckpointId,
            Created = Timestamp.FromDateTimeOffset(manifest.CreatedAt),
            SourceNode = manifest.SourceNode ?? "",
            PodNamespace = manifest.Pod?.Namespace ?? "",
            PodName = manifest.Pod?.Name ?? "",
            PodUid = manifest.Pod?.Uid ?? "",
            ContainerName = manifest.Container?.Name ?? "",
            ContainerId = manifest.Container?.Id ?? "",
            Image = manifest.ImageReference ?? "",
            Runtime = manifest.Runtime ?? "",
            CriuVersion = manifest.CriuVersion ?? "",
            Codec = manifest.Codec.Name switch
            {
                "zstd" => Codec.Zstd,
                "gzip" => Codec.Gzip,
                "none" => Codec.None,
                _ => Codec.Unspecified,
            },
            Level = manifest.Codec.Level,
            RawBytes = manifest.RawSize,
            ArchiveBytes = manifest.CompressedSize,
            ArchiveSha256 = manifest.ArchiveSha256,
            FileCount = manifest.Files.Count,
            Pinned = manifest.Pinned,
            Path = stored.ArchivePath,
        };
        info.Labels.Add(manifest.Labels);
        return info;
    }
}
