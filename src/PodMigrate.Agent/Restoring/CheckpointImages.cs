using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Core.Retry;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using ImagesApi = Containerd.Services.Images.V1;

namespace PodMigrate.Agent.Restoring;

/// <summary>What a node has of a checkpoint as a checkpoint image: the reference a kubelet or the agent creates the container with.</summary>
/// <param name="Reference">e.g. <c>localhost/podmigrate/checkpoint/default-counter:ck-…</c>.</param>
/// <param name="ImageId">The image id CRI reports for it (its config digest), what a kubelet passes to CreateContainer.</param>
/// <param name="ContainerName">The checkpointed container's name.</param>
/// <param name="Reused">The node already had it: the archive was not read.</param>
internal sealed record NodeCheckpointImage(string Reference, string ImageId, string ContainerName, bool Reused);

/// <summary>
/// Checkpoint images in this node's containerd (the CRI namespace), built straight from the share: the archive is read
/// once, verified in the same pass, and written as the image's layer into containerd's content store through the
/// Content API (an ingest that becomes content only when the whole archive has verified: a corrupt archive is
/// DataLoss and nothing is imported); then the config and manifest, the unpack into CRI's snapshotter (containerd's
/// restore mounts the image), and the image record, labelled with the checkpoint id. Everything is held by a lease
/// until the image references it. Importing a checkpoint the node has is a lookup; imports run one at a time.
/// </summary>
internal sealed class CheckpointImages(
    ICheckpointStore store,
    ContainerdConnection containerd,
    CriConnection cri,
    TimeProvider time,
    ILogger<CheckpointImages> logger) : IDisposable
{
    private static readonly TimeSpan LeaseLifetime = TimeSpan.FromHours(1);
    private static readonly TimeSpan CriVisibilityTimeout = TimeSpan.FromSeconds(15);
    private static readonly IReadOnlySet<string> RequiredFiles = new HashSet<string>(StringComparer.Ordinal)
    {
        // containerd's restore reads all three (labels and annotations come from status.dump).
        CheckpointLayout.ConfigDumpFile, CheckpointLayout.SpecDumpFile, CheckpointLayout.StatusDumpFile,
    };

    private readonly SemaphoreSlim _imports = new(1, 1);
    private readonly ContainerdImages _images = new(containerd);

    /// <summary>
    /// Makes the checkpoint of <paramref name="context"/> an image on this node (Fetch: archive → content store;
    /// Import: config, manifest, unpack, image record, until CRI lists it), or finds the one made before.
    /// </summary>
    public async Task<NodeCheckpointImage> ImportAsync(RestoreContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var manifest = context.Stored.Manifest;
        var reference = CheckpointImage.ReferenceFor(manifest).ToString();
        await _imports.WaitAsync(cancellationToken);
        try
        {
            if (await FindAsync(context.Id, reference, cancellationToken) is { } existing)
            {
                AgentLog.CheckpointImageReused(logger, context.Id.Value, reference);
                return existing;
            }
            var missing = RequiredFiles.Where(f => !manifest.Files.Any(e => e.Path == f && e.Type == ManifestEntryType.File)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
            {
                throw PodMigrateException.FailedPrecondition($"checkpoint {context.Id} has no {string.Join(", ", missing)}; containerd cannot restore it from a checkpoint image");
            }
            return await BuildAsync(context, reference, cancellationToken);
        }
        finally
        {
            _imports.Release();
        }
    }

    /// <summary>
    /// Removes this node's images of checkpoint <paramref name="id"/>, with the record named by the image id that
    /// containerd's CRI adds for every image it sees (left behind, it would keep the layer and its snapshot);
    /// containerd's garbage collector then frees both. Returns how many images there were.
    /// </summary>
    public async Task<int> RemoveAsync(CheckpointId id, CancellationToken cancellationToken)
    {
        var images = await _images.ListAsync(cancellationToken, LabelFilter(id));
        foreach (var image in images)
        {
            var imageId = await ConfigDigestOrNullAsync(image.Name, cancellationToken);
            // CRI removes every name it keeps for the image (and updates its cache, which a kubelet reads).
            await cri.Images.RemoveImageAsync(image.Name, cancellationToken);
            foreach (var name in imageId is null ? [image.Name] : new[] { image.Name, imageId })
            {
                await DeleteIfPresentAsync(name, cancellationToken);
            }
            AgentLog.CheckpointImageRemoved(logger, id.Value, image.Name);
        }
        return images.Count;
    }

    public void Dispose() => _imports.Dispose();

    /// <summary>The containerd filter for the images of one checkpoint.</summary>
    public static string LabelFilter(CheckpointId id) => $"labels.\"{CheckpointImage.CheckpointIdKey}\"==\"{id.Value}\"";

    private async Task<NodeCheckpointImage> BuildAsync(RestoreContext context, string reference, CancellationToken cancellationToken)
    {
        var id = context.Id;
        var suffix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var leases = new ContainerdLeases(containerd);
        var lease = await leases.CreateAsync($"podmigrate-import-{id}-{suffix}", LeaseLifetime, cancellationToken);
        await using (lease)
        {
            var leased = leases.Under(lease);
            var content = new ContainerdContent(leased);
            ContainerConfigDump? config = null;
            var options = new CheckpointTarCopyOptions
            {
                // The blob's digest covers every byte, and the ingest becomes content only once it has matched.
                Verification = ArchiveVerification.ArchiveDigest,
                Captured = new HashSet<string>(StringComparer.Ordinal) { CheckpointLayout.ConfigDumpFile },
                Rewrite = async (name, bytes, ct) =>
                {
                    var original = ArchiveJson.DeserializeConfigDump(bytes, $"{CheckpointLayout.ConfigDumpFile} of checkpoint {id}");
                    config = await EnsurePullableBaseImageAsync(context, original, ct);
                    return ReferenceEquals(config, original) ? bytes : ArchiveJson.SerializeConfigDump(config);
                },
            };

            var layer = await context.PhaseAsync(Phase.Fetch, $"streaming checkpoint {id} from the share into containerd's content store, verifying it", async () =>
            {
                // The ingest is content only once the whole pass has verified; failing, it is aborted with nothing imported.
                var ingest = content.OpenWriter($"podmigrate-{id}-layer-{suffix}", Timeout.InfiniteTimeSpan, cancellationToken);
                await using (ingest)
                {
                    var (_, written) = await store.WriteImageLayerAsync(id, ingest, options, cancellationToken);
                    await ingest.CommitAsync(written.Descriptor.Digest, labels: null, cancellationToken);
                    return written;
                }
            });
            foreach (var skipped in layer.Skipped)
            {
                AgentLog.CheckpointImageEntrySkipped(logger, id.Value, skipped);
            }
            var containerConfig = config ?? throw PodMigrateException.FailedPrecondition($"checkpoint {id} has no {CheckpointLayout.ConfigDumpFile}");

            return await context.PhaseAsync(Phase.Import, $"importing checkpoint image {reference}", async () =>
            {
                var annotations = CheckpointImage.AnnotationsFor(context.Stored.Manifest, containerConfig);
                var documents = CheckpointImage.Describe(layer.Descriptor, annotations);
                var unpacker = new ContainerdUnpacker(leased);
                await WriteDocumentsAsync(content, documents, unpacker.Snapshotter, suffix, cancellationToken);
                await unpacker.UnpackAsync([ImageLayer.Uncompressed(documents.Layer.MediaType, documents.Layer.Digest, documents.Layer.Size)], cancellationToken);
                await CreateImageRecordAsync(id, reference, documents.Manifest.Descriptor, cancellationToken);
                var imageId = await WaitUntilCriListsAsync(reference, cancellationToken);
                AgentLog.CheckpointImageImported(logger, id.Value, reference, layer.Descriptor.Size);
                return new NodeCheckpointImage(reference, imageId, annotations[CheckpointImage.ContainerNameAnnotation], Reused: false);
            });
        }
    }

    /// <summary>
    /// The image made before, if any, made whole again if it has lost its snapshot (the unpack redone from the
    /// content store: the archive is not read again).
    /// </summary>
    private async Task<NodeCheckpointImage?> FindAsync(CheckpointId id, string reference, CancellationToken cancellationToken)
    {
        ImagesApi.Image image;
        try
        {
            image = await _images.GetAsync(reference, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
        if (!image.Labels.TryGetValue(CheckpointImage.CheckpointIdKey, out var labelled) || labelled != id.Value)
        {
            throw PodMigrateException.FailedPrecondition($"image {reference} exists on this node but is not labelled as checkpoint {id}; remove it or restore another way");
        }
        var resolved = await _images.ResolveAsync(reference, cancellationToken);
        var layers = resolved.Layers ?? [];
        var unpacker = new ContainerdUnpacker(containerd);
        if (layers.Count != 1 || layers[0].MediaType != OciMediaTypes.LayerTar)
        {
            throw PodMigrateException.FailedPrecondition($"image {reference} is not a checkpoint image (it has {layers.Count} layers); remove it");
        }
        if (!await unpacker.ExistsAsync(resolved.ChainId, cancellationToken))
        {
            var leases = new ContainerdLeases(containerd);
            var lease = await leases.CreateAsync($"podmigrate-unpack-{id}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}", LeaseLifetime, cancellationToken);
            await using (lease)
            {
                var layer = layers[0];
                await new ContainerdUnpacker(leases.Under(lease)).UnpackAsync([ImageLayer.Uncompressed(layer.MediaType, layer.Digest, layer.Size)], cancellationToken);
                await new ContainerdContent(containerd).SetLabelsAsync((resolved.ConfigDescriptor ?? throw new PodMigrateException(ErrorKind.DataLoss, $"image {reference} has no config")).Digest, SnapshotLabel(unpacker.Snapshotter, resolved.ChainId), cancellationToken);
            }
        }
        var imageId = await WaitUntilCriListsAsync(reference, cancellationToken);
        var containerName = resolved.Annotations?.GetValueOrDefault(CheckpointImage.ContainerNameAnnotation) ?? "";
        return new NodeCheckpointImage(reference, imageId, containerName, Reused: true);
    }

    /// <summary>
    /// The config (naming the snapshot it unpacks to) and the manifest (naming its config and layer), labelled so
    /// that containerd's garbage collector keeps all of it for as long as the image exists.
    /// </summary>
    private static async Task WriteDocumentsAsync(ContainerdContent content, CheckpointImageDocuments documents, string snapshotter, string suffix, CancellationToken cancellationToken)
    {
        var config = documents.Config;
        await content.WriteBlobAsync($"podmigrate-config-{config.Descriptor.Digest}-{suffix}", config.Content, config.Descriptor.Digest,
            SnapshotLabel(snapshotter, documents.ChainId), cancellationToken);
        var manifest = documents.Manifest;
        var references = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [ContainerdContent.GcContentReferencePrefix + "config"] = config.Descriptor.Digest,
            [ContainerdContent.GcContentReferencePrefix + "l.0"] = documents.Layer.Digest,
        };
        await content.WriteBlobAsync($"podmigrate-manifest-{manifest.Descriptor.Digest}-{suffix}", manifest.Content, manifest.Descriptor.Digest, references, cancellationToken);
    }

    private async Task<string?> ConfigDigestOrNullAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return (await _images.ResolveAsync(name, cancellationToken)).ConfigDescriptor?.Digest;
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.DataLoss)
        {
            // Gone meanwhile, or its manifest is: there is no image-id record to look for.
            return null;
        }
    }

    /// <summary>Deletes an image record; the last delete waits for containerd's garbage collector (the blobs and snapshot are freed).</summary>
    private async Task DeleteIfPresentAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await _images.DeleteAsync(name, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            // Removed already (by CRI, or meanwhile): the goal is met.
        }
    }

    private static Dictionary<string, string> SnapshotLabel(string snapshotter, string chainId)
        => new(StringComparer.Ordinal) { [ContainerdContent.GcSnapshotReferencePrefix + snapshotter] = chainId };

    private async Task CreateImageRecordAsync(CheckpointId id, string reference, Core.Images.OciDescriptor manifest, CancellationToken cancellationToken)
    {
        var image = new ImagesApi.Image
        {
            Name = reference,
            Target = new global::Containerd.Types.Descriptor { MediaType = manifest.MediaType, Digest = manifest.Digest, Size = manifest.Size },
        };
        image.Labels[CheckpointImage.CheckpointIdKey] = id.Value;
        try
        {
            await _images.CreateAsync(image, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // Another agent on this node imported the same checkpoint meanwhile: the same archive gives the same image.
            var existing = await _images.GetAsync(reference, cancellationToken);
            if (existing.Target.Digest != manifest.Digest)
            {
                AgentLog.CheckpointImageRaced(logger, id.Value, reference, existing.Target.Digest, manifest.Digest);
            }
        }
    }

    /// <summary>
    /// CRI learns about images from containerd's events, a moment after they are created; a kubelet asks CRI
    /// (ImageStatus), so the import is done only when CRI answers for the reference. Returns CRI's image id.
    /// </summary>
    private async Task<string> WaitUntilCriListsAsync(string reference, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CriVisibilityTimeout);
        var delay = TimeSpan.FromMilliseconds(10);
        while (true)
        {
            if (await cri.Images.ImageStatusAsync(reference, cancellationToken) is { } image)
            {
                return image.Id;
            }
            try
            {
                await Task.Delay(delay, time, timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw PodMigrateException.Unavailable($"containerd's CRI did not list image {reference} within {CriVisibilityTimeout.TotalSeconds:0} s of its import");
            }
            delay = ExponentialBackoff.Doubled(delay, TimeSpan.FromMilliseconds(250));
        }
    }

    /// <summary>
    /// containerd 2.1 pulls config.dump's rootfsImageRef during the restore even when the image is present, so it must
    /// be a repo digest (registry/name@sha256:…). A checkpoint of a container whose image was imported, not pulled,
    /// has the image id there instead: resolve the image's name in its registry and pin it to the digest found.
    /// </summary>
    private async Task<ContainerConfigDump> EnsurePullableBaseImageAsync(RestoreContext context, ContainerConfigDump config, CancellationToken cancellationToken)
    {
        if (config.RootfsImageRef is { } imageRef && IsRepoDigest(imageRef))
        {
            return config;
        }
        var name = new[] { config.RootfsImageName, config.RootfsImage, context.Stored.Manifest.ImageReference }
            .FirstOrDefault(n => !string.IsNullOrEmpty(n) && !n.StartsWith("sha256:", StringComparison.Ordinal))
            ?? throw PodMigrateException.FailedPrecondition(
                $"checkpoint {context.Id}: config.dump names no pullable base image (rootfsImageRef '{config.RootfsImageRef}'), which containerd's CRI restore pulls");
        var reference = ImageReference.Parse(name);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var manifest = await new RegistryClient(http).GetManifestAsync(reference, cancellationToken);
        var pinned = reference.PinnedTo(manifest.Digest).ToString();
        AgentLog.BaseImagePinned(logger, context.Id.Value, name, pinned);
        return config with { RootfsImageRef = pinned };
    }

    private static bool IsRepoDigest(string reference)
    {
        var at = reference.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && reference[..at].Contains('/', StringComparison.Ordinal);
    }

}
