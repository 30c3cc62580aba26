using PodMigrate.Agent.Containers;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;

namespace PodMigrate.Agent.Checkpointing;

/// <summary>What CRI knows of a pod's container and a CRI restore needs: status.dump, and a pullable image reference.</summary>
internal sealed record CriContainerMetadata(string? ImageRef, byte[] StatusDump);

/// <summary>Reads a pod container's CRI ContainerStatus and writes it as containerd's status.dump (Go JSON of the CRI struct).</summary>
internal sealed class CriStatusReader(CriConnection cri)
{
    /// <summary>Null for containers that no kubelet created (no CRI record).</summary>
    public async Task<CriContainerMetadata?> ReadAsync(SourceContainer source, CancellationToken cancellationToken)
    {
        if (!source.IsPodContainer)
        {
            return null;
        }
        global::Runtime.V1.ContainerStatus status;
        try
        {
            status = await cri.Runtime.ContainerStatusAsync(source.Id, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
        var dump = new ContainerStatusDump
        {
            Id = status.Id,
            Metadata = new ContainerMetadataDump { Name = status.Metadata?.Name, Attempt = status.Metadata?.Attempt ?? 0 },
            State = (int)status.State,
            CreatedAt = status.CreatedAt,
            StartedAt = status.StartedAt,
            FinishedAt = status.FinishedAt,
            Image = status.Image is null ? null : new ImageSpecDump
            {
                Image = status.Image.Image,
                UserSpecifiedImage = status.Image.UserSpecifiedImage,
                Annotations = status.Image.Annotations.ToDictionary(),
            },
            ImageRef = status.ImageRef,
            Labels = status.Labels.ToDictionary(),
            Annotations = status.Annotations.ToDictionary(),
            LogPath = status.LogPath,
        };
        // CRI reports an image pulled from a registry by its repo digest (pullable anywhere); one only imported by its id.
        var imageRef = status.ImageRef.Contains('@', StringComparison.Ordinal) ? status.ImageRef : null;
        return new CriContainerMetadata(imageRef, ArchiveJson.SerializeStatusDump(dump));
    }
}
