using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Images;

/// <summary>
/// The checkpoint image: a checkpoint as an OCI image that a CRI runtime restores from when a container is created
/// with it as its image (containerd 2.1+, CRI-O). One uncompressed layer holds the archive's files at its root
/// (checkpoint/, config.dump, spec.dump, status.dump, rootfs-diff.tar, …; regular files and directories only, which is
/// all containerd 2.1 accepts there); the manifest's annotations tell each runtime that it is a checkpoint; the config
/// is the minimum an image store needs. This class owns that format: the reference, the annotations, the layer and
/// the JSON documents.
/// </summary>
public static class CheckpointImage
{
    /// <summary>containerd 2.1+ recognises a checkpoint image by this manifest annotation (checkpointctl's key).</summary>
    public const string ContainerNameAnnotation = "org.criu.checkpoint.container.name";

    /// <summary>CRI-O recognises a checkpoint image by this manifest annotation instead.</summary>
    public const string CriOContainerNameAnnotation = "io.kubernetes.cri-o.annotations.checkpoint.name";

    public const string PodNameAnnotation = "org.criu.checkpoint.pod.name";
    public const string PodNamespaceAnnotation = "org.criu.checkpoint.pod.namespace";
    public const string RootfsImageNameAnnotation = "org.criu.checkpoint.rootfsImageName";
    public const string RootfsImageUserRequestedAnnotation = "org.criu.checkpoint.rootfsImageUserRequested";
    public const string EngineNameAnnotation = "org.criu.checkpoint.engine.name";
    public const string RuntimeNameAnnotation = "org.criu.checkpoint.runtime.name";
    public const string CriuVersionAnnotation = "org.criu.checkpoint.criu.version";

    /// <summary>The checkpoint the image was built from (an annotation on the manifest, and a label on the image record).</summary>
    public const string CheckpointIdKey = "podmigrate.io/checkpoint-id";

    /// <summary>The base image as the restoring runtime pulls it (config.dump's rootfsImageRef); no org.criu key names it.</summary>
    public const string RootfsImageRefAnnotation = "podmigrate.io/rootfs-image-ref";

    /// <summary>Checkpoint images are never pushed: "localhost" names no registry anyone pulls from, and CRI keeps the name as it is.</summary>
    public const string Registry = "localhost";

    public const string RepositoryPrefix = "podmigrate/checkpoint/";

    /// <summary>The engine whose layout the archive follows (spec.dump, status.dump and a gzip rootfs-diff.tar as containerd writes them).</summary>
    public const string EngineName = "containerd";

    // distribution/reference: a name (registry and repository) is at most 255 characters.
    private const int MaxNameLength = 255;
    private const int PipelineChunkSize = 1 << 20;
    private const int PipelineDepth = 4;

    /// <summary>
    /// <c>localhost/podmigrate/checkpoint/&lt;pod namespace&gt;-&lt;pod name&gt;:&lt;checkpoint id&gt;</c> (the container name for a
    /// checkpoint of a bare container): fully qualified, so CRI and a kubelet use it unchanged.
    /// </summary>
    public static ImageReference ReferenceFor(CheckpointManifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var source = manifest.Pod is { } pod ? $"{pod.Namespace}-{pod.Name}" : manifest.Container?.Name ?? "container";
        var maxComponent = MaxNameLength - Registry.Length - 1 - RepositoryPrefix.Length;
        return new ImageReference(Registry, RepositoryPrefix + PathComponent(source, maxComponent), manifest.CheckpointId);
    }

    /// <summary>
    /// Streams the checkpoint archive <paramref name="blob"/> into <paramref name="destination"/> as the image's layer:
    /// one verifying pass (every file's and the blob's sha256; DataLoss otherwise, after which what
    /// <paramref name="destination"/> received must be discarded), reproducible bytes, symlinks left out. The layer is
    /// hashed and written on a task of its own while the pass goes on.
    /// </summary>
    public static async Task<CheckpointLayer> WriteLayerAsync(
        Stream blob, CheckpointManifest manifest, Stream destination, CheckpointTarCopyOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var layer = new WriteBehindHashingStream(destination, PipelineChunkSize, PipelineDepth, leaveOpen: true);
        await using (layer)
        {
            var copied = await CheckpointTarCopier.CopyAsync(blob, manifest, layer, options with { Reproducible = true, FilesAndDirectoriesOnly = true }, cancellationToken);
            await layer.CompleteAsync(cancellationToken);
            var descriptor = new OciDescriptor(OciMediaTypes.LayerTar, "sha256:" + layer.Sha256, layer.BytesWritten);
            return new CheckpointLayer(descriptor, copied.Captured, copied.Skipped);
        }
    }

    /// <summary>
    /// The manifest annotations: both runtimes' detection keys, and the other org.criu.checkpoint keys the checkpoint
    /// can fill truthfully.
    /// </summary>
    public static IReadOnlyDictionary<string, string> AnnotationsFor(CheckpointManifest manifest, ContainerConfigDump config)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(config);
        var containerName = manifest.Container?.Name is { Length: > 0 } name ? name : config.Name;
        var annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [ContainerNameAnnotation] = containerName,
            [CriOContainerNameAnnotation] = containerName,
            [CheckpointIdKey] = manifest.CheckpointId,
            [EngineNameAnnotation] = EngineName,
        };
        Add(annotations, PodNameAnnotation, manifest.Pod?.Name);
        Add(annotations, PodNamespaceAnnotation, manifest.Pod?.Namespace);
        Add(annotations, RootfsImageNameAnnotation, config.RootfsImageName);
        Add(annotations, RootfsImageUserRequestedAnnotation, config.RootfsImage);
        Add(annotations, RootfsImageRefAnnotation, config.RootfsImageRef);
        Add(annotations, RuntimeNameAnnotation, manifest.Runtime ?? config.Runtime);
        Add(annotations, CriuVersionAnnotation, manifest.CriuVersion);
        return annotations;
    }

    /// <summary>The config and the manifest of the image with <paramref name="layer"/> as its only layer.</summary>
    public static CheckpointImageDocuments Describe(OciDescriptor layer, IReadOnlyDictionary<string, string> annotations)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(annotations);
        if (layer.MediaType != OciMediaTypes.LayerTar)
        {
            throw PodMigrateException.InvalidArgument($"a checkpoint image layer is {OciMediaTypes.LayerTar}, not {layer.MediaType}");
        }
        // Uncompressed: the layer's digest is its diff id.
        var config = new OciImageConfig(GoArchitecture(), "linux", new OciContainerConfig(), new OciRootFs("layers", [layer.Digest]));
        var configDocument = Document(OciMediaTypes.ImageConfig, JsonSerializer.SerializeToUtf8Bytes(config, OciJson.Context.OciImageConfig));
        var manifest = new OciManifest(2, OciMediaTypes.ImageManifest, configDocument.Descriptor, [layer])
        {
            Annotations = new SortedDictionary<string, string>(annotations.ToDictionary(), StringComparer.Ordinal),
        };
        var manifestDocument = Document(OciMediaTypes.ImageManifest, JsonSerializer.SerializeToUtf8Bytes(manifest, OciJson.Context.OciManifest));
        return new CheckpointImageDocuments(configDocument, manifestDocument, layer);
    }

    /// <summary>The architecture as OCI (Go) names it: CRIU images only restore on the architecture that dumped them.</summary>
    public static string GoArchitecture() => RuntimeInformation.OSArchitecture switch
    {
        Architecture.X64 => "amd64",
        Architecture.Arm64 => "arm64",
        Architecture.X86 => "386",
        Architecture.Arm => "arm",
        Architecture.Ppc64le => "ppc64le",
        Architecture.S390x => "s390x",
        Architecture.RiscV64 => "riscv64",
        var other => other.ToString().ToLowerInvariant(),
    };

    private static ImageDocument Document(string mediaType, byte[] content)
        => new(new OciDescriptor(mediaType, OciDigest.Compute(content).ToString(), content.Length), content);

    private static void Add(SortedDictionary<string, string> annotations, string key, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            annotations[key] = value;
        }
    }

    /// <summary>
    /// A repository path component from free text: lowercase alphanumerics joined by single separators ('.', '_', '-'),
    /// at most <paramref name="maxLength"/> long (a cut name gets a hash of the whole, so two long names stay apart).
    /// </summary>
    private static string PathComponent(string text, int maxLength)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text.ToLowerInvariant())
        {
            if (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c))
            {
                builder.Append(c);
            }
            else if (builder.Length > 0 && builder[^1] is not ('-' or '.' or '_'))
            {
                builder.Append(c is '.' or '_' ? c : '-');
            }
        }
        var component = builder.ToString().TrimEnd('-', '.', '_');
        if (component.Length == 0)
        {
            component = "container";
        }
        if (component.Length > maxLength)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];
            component = component[..(maxLength - hash.Length - 1)].TrimEnd('-', '.', '_') + "-" + hash;
        }
        return component;
    }
}

/// <summary>A checkpoint image's layer as written: its descriptor, the captured metadata as written, the entries left out.</summary>
public sealed record CheckpointLayer(OciDescriptor Descriptor, IReadOnlyDictionary<string, byte[]> Captured, IReadOnlyList<string> Skipped);

/// <summary>A small JSON blob of an image and its descriptor.</summary>
public sealed record ImageDocument(OciDescriptor Descriptor, byte[] Content);

/// <summary>What makes a checkpoint image besides its layer: the config and the manifest (the image's target).</summary>
public sealed record CheckpointImageDocuments(ImageDocument Config, ImageDocument Manifest, OciDescriptor Layer)
{
    /// <summary>The snapshot the image unpacks to (one layer: its diff id).</summary>
    public string ChainId => Layer.Digest;
}
