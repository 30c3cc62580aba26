using System.Runtime.CompilerServices;
using Google.Protobuf;
using PodMigrate.Core.Errors;
using ContentApi = Containerd.Services.Content.V1;
using ImagesApi = Containerd.Services.Images.V1;
using TransferApi = Containerd.Services.Transfer.V1;
using TransferTypes = Containerd.Types.Transfer;
using Any = Google.Protobuf.WellKnownTypes.Any;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>How to pull: the registry's scheme, and which platform to unpack for which snapshotter.</summary>
/// <param name="PlainHttp">Talk plain http to the registry (a registry on localhost without TLS).</param>
/// <param name="HostsDirectory">
/// The registry hosts directory (<c>&lt;host&gt;/hosts.toml</c>, as CRI's <c>config_path</c>) for the resolver;
/// containerd 2.x honours it and <see cref="PlainHttp"/>; 1.7's Transfer service ignores both and always uses https.
/// </param>
public sealed record ImagePullOptions(
    bool PlainHttp = false,
    string HostsDirectory = "",
    string Snapshotter = ContainerdSnapshots.Overlayfs,
    string Os = "linux",
    string Architecture = "amd64",
    TimeSpan? Timeout = null);

/// <summary>Images, the content they reference, and pulling from a registry through containerd's Transfer service.</summary>
public sealed class ContainerdImages(ContainerdConnection connection)
{
    private readonly ContentApi.Content.ContentClient _content = new(connection.Invoker);
    private readonly ImagesApi.Images.ImagesClient _images = new(connection.Invoker);
    private readonly TransferApi.Transfer.TransferClient _transfer = new(connection.Invoker);

    /// <summary>Manifests and configs are small; anything larger read into memory is refused.</summary>
    private const int MaxJsonBlobSize = 4 * 1024 * 1024;


    public async Task<ImagesApi.Image> GetAsync(string name, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _images.GetAsync(new ImagesApi.GetImageRequest { Name = name }, o), new ContainerdCall($"getting image {name}"), cancellationToken);
        return response.Image;
    }

    /// <summary>Images matching containerd filters (e.g. <c>name==localhost:5000/x:1</c>); all when none are given.</summary>
    public async Task<IReadOnlyList<ImagesApi.Image>> ListAsync(CancellationToken cancellationToken, params string[] filters)
    {
        var request = new ImagesApi.ListImagesRequest();
        request.Filters.Add(filters);
        var response = await connection.UnaryAsync(o => _images.ListAsync(request, o), new ContainerdCall("listing images"), cancellationToken);
        return response.Images;
    }

    /// <summary>Creates the image record <c>name → target</c> (AlreadyExists when the name is taken).</summary>
    public async Task<ImagesApi.Image> CreateAsync(ImagesApi.Image image, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(image);
        var response = await connection.UnaryAsync(o => _images.CreateAsync(new ImagesApi.CreateImageRequest { Image = image }, o), new ContainerdCall($"creating image {image.Name}"), cancellationToken);
        return response.Image;
    }

    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _images.DeleteAsync(new ImagesApi.DeleteImageRequest { Name = name, Sync = true }, o), new ContainerdCall($"deleting image {name}"), cancellationToken);

    /// <summary>
    /// Pulls <paramref name="reference"/> (e.g. <c>localhost:5000/podmigrate/counter:1</c>) into this namespace's image
    /// store and unpacks it for the snapshotter, the way <c>ctr transfer</c> does; returns the stored image.
    /// </summary>
    public async Task<ImagesApi.Image> PullAsync(string reference, ImagePullOptions? options, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(reference);
        options ??= new ImagePullOptions();
        var source = new TransferTypes.OCIRegistry
        {
            Reference = reference,
            Resolver = new TransferTypes.RegistryResolver { DefaultScheme = options.PlainHttp ? "http" : "", HostDir = options.HostsDirectory },
        };
        var platform = new global::Containerd.Types.Platform { Os = options.Os, Architecture = options.Architecture };
        var destination = new TransferTypes.ImageStore { Name = reference };
        destination.Platforms.Add(platform);
        destination.Unpacks.Add(new TransferTypes.UnpackConfiguration { Platform = platform, Snapshotter = options.Snapshotter });
        var request = new TransferApi.TransferRequest { Source = BareAny(source), Destination = BareAny(destination) };
        var call = new ContainerdCall($"pulling image {reference}", options.Timeout ?? TimeSpan.FromMinutes(5));
        await connection.UnaryAsync(o => _transfer.TransferAsync(request, o), call, cancellationToken);
        return await GetAsync(reference, cancellationToken);
    }

    public async Task<ContentApi.Info> InfoAsync(string digest, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _content.InfoAsync(new ContentApi.InfoRequest { Digest = digest }, o), new ContainerdCall($"getting content {digest}"), cancellationToken);
        return response.Info;
    }

    /// <summary>Streams a blob's bytes into <paramref name="destination"/> as they arrive; returns the byte count.</summary>
    public async Task<long> ReadAsync(string digest, Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        long total = 0;
        await foreach (var chunk in ReadChunksAsync(digest, TimeSpan.FromMinutes(10), cancellationToken))
        {
            await destination.WriteAsync(chunk.Memory, cancellationToken);
            total += chunk.Length;
        }
        return total;
    }

    /// <summary>The manifest, config and chain id of an image, picking the platform's manifest from an index.</summary>
    public async Task<ResolvedImage> ResolveAsync(string name, CancellationToken cancellationToken, string os = "linux", string architecture = "amd64")
    {
        var image = await GetAsync(name, cancellationToken);
        var target = image.Target;
        var manifestDescriptor = new OciDescriptor(target.MediaType, target.Digest, target.Size);
        var manifest = OciImageJson.Parse(await ReadJsonBlobAsync(target.Digest, cancellationToken), OciImageJsonContext.Default.OciManifestOrIndex, $"manifest {target.Digest} of image {name}");
        if (OciImageMediaTypes.IsIndex(target.MediaType) || manifest.Manifests is not null)
        {
            manifestDescriptor = manifest.Manifests?.FirstOrDefault(m => m.Platform?.Os == os && m.Platform.Architecture == architecture)
                ?? throw PodMigrateException.NotFound($"image {name} has no manifest for {os}/{architecture}");
            manifest = OciImageJson.Parse(await ReadJsonBlobAsync(manifestDescriptor.Digest, cancellationToken), OciImageJsonContext.Default.OciManifestOrIndex, $"manifest {manifestDescriptor.Digest} of image {name}");
        }
        var configDescriptor = manifest.Config ?? throw new PodMigrateException(ErrorKind.DataLoss, $"manifest {manifestDescriptor.Digest} of image {name} has no config");
        var config = OciImageJson.Parse(await ReadJsonBlobAsync(configDescriptor.Digest, cancellationToken), OciImageJsonContext.Default.OciImageConfig, $"config {configDescriptor.Digest} of image {name}");
        var chainId = OciImageJson.ChainId(config.RootFs?.DiffIds ?? []);
        return new ResolvedImage(name, manifestDescriptor, config, chainId, manifest.Layers, manifest.Annotations, configDescriptor);
    }

    private async Task<byte[]> ReadJsonBlobAsync(string digest, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await foreach (var chunk in ReadChunksAsync(digest, timeout: null, cancellationToken))
        {
            if (buffer.Length + chunk.Length > MaxJsonBlobSize)
            {
                throw new PodMigrateException(ErrorKind.ResourceExhausted, $"blob {digest} is larger than {MaxJsonBlobSize} bytes; not a manifest or config");
            }
            buffer.Write(chunk.Span);
        }
        return buffer.ToArray();
    }

    private async IAsyncEnumerable<ByteString> ReadChunksAsync(string digest, TimeSpan? timeout, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var request = new ContentApi.ReadContentRequest { Digest = digest };
        await foreach (var response in connection.ServerStreamingAsync(o => _content.Read(request, o), new ContainerdCall($"reading content {digest}", timeout), cancellationToken))
        {
            yield return response.Data;
        }
    }

    /// <summary>
    /// containerd resolves transfer objects by the exact type URL, which is the bare message name
    /// (Any.Pack's "type.googleapis.com/" prefix is not understood).
    /// </summary>
    private static Any BareAny(IMessage message) => new() { TypeUrl = message.Descriptor.FullName, Value = message.ToByteString() };
}
