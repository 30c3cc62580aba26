namespace PodMigrate.Core.Images;

/// <summary>The media types and annotation keys of the OCI image spec that PodMigrate writes or reads.</summary>
public static class OciMediaTypes
{
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";
    public const string LayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string LayerTar = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>Docker's schema 2 types, which a registry may still serve for images others pushed.</summary>
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>Whether the type is an index (OCI) or a manifest list (Docker), whose entries are per-platform manifests.</summary>
    public static bool IsIndex(string mediaType) => mediaType is ImageIndex or DockerManifestList;

    /// <summary>The tag of a manifest in an OCI layout's index.json.</summary>
    public const string RefNameAnnotation = "org.opencontainers.image.ref.name";

    /// <summary>The full image name in an index.json; `ctr images import` names the image after it.</summary>
    public const string ContainerdImageNameAnnotation = "io.containerd.image.name";
}
