using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>
/// An OCI image layout directory: <c>oci-layout</c>, <c>index.json</c> and content-addressed <c>blobs/sha256/…</c>.
/// Blobs are written under a temporary name and renamed once complete, so a blob's final name always
/// matches its content; index.json is replaced the same way. Several images can share one layout:
/// index.json holds one manifest per image name.
/// </summary>
public sealed class OciLayout
{
    private const string LayoutFileName = "oci-layout";
    private const string IndexFileName = "index.json";

    private OciLayout(string root) => Root = root;

    public string Root { get; }

    private string BlobDirectory => Path.Combine(Root, "blobs", "sha256");

    /// <summary>Opens the layout at <paramref name="root"/>, creating the directory and its oci-layout file if needed.</summary>
    public static async Task<OciLayout> CreateAsync(string root, CancellationToken cancellationToken)
    {
        var layout = new OciLayout(Path.GetFullPath(root));
        Directory.CreateDirectory(layout.BlobDirectory);
        var marker = Path.Combine(layout.Root, LayoutFileName);
        if (!File.Exists(marker))
        {
            await WriteAtomicAsync(marker, stream => JsonSerializer.SerializeAsync(stream, new OciLayoutMarker("1.0.0"), OciJson.Context.OciLayoutMarker, cancellationToken), cancellationToken);
        }

        return layout;
    }

    /// <summary>Opens an existing layout; NotFound when <paramref name="root"/> has no oci-layout file.</summary>
    public static OciLayout Open(string root)
    {
        var full = Path.GetFullPath(root);
        return File.Exists(Path.Combine(full, LayoutFileName))
            ? new OciLayout(full)
            : throw PodMigrateException.NotFound($"{full} is not an OCI image layout (no {LayoutFileName})");
    }

    public string BlobPath(OciDigest digest) => Path.Combine(BlobDirectory, digest.Hex);

    public bool HasBlob(OciDigest digest) => File.Exists(BlobPath(digest));

    /// <summary>Opens a blob for reading (asynchronous, sequential); NotFound when it is not in the layout.</summary>
    public FileStream OpenBlob(OciDigest digest)
    {
        try
        {
            return new FileStream(BlobPath(digest), FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        }
        catch (FileNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"blob {digest} is not in the layout {Root}", e);
        }
    }

    /// <summary>
    /// Streams a new blob through <paramref name="write"/> into the layout, hashing it on the way, and names it
    /// after its digest. Writing content that is already there is harmless: it has the same name.
    /// </summary>
    public async Task<OciDescriptor> WriteBlobAsync(string mediaType, Func<Stream, CancellationToken, Task> write, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(write);
        var temp = Path.Combine(BlobDirectory, $".tmp-{Guid.NewGuid():N}");
        try
        {
            OciDigest digest;
            long size;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous))
            {
                await using var hashing = new HashingStream(file, leaveOpen: true);
                await write(hashing, cancellationToken);
                await hashing.FlushAsync(cancellationToken);
                (digest, size) = (hashing.GetDigest(), hashing.BytesWritten);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, BlobPath(digest), overwrite: true);
            return new OciDescriptor(mediaType, digest.ToString(), size);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    public Task<OciDescriptor> WriteJsonBlobAsync<T>(string mediaType, T value, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
        => WriteBlobAsync(mediaType, (stream, token) => JsonSerializer.SerializeAsync(stream, value, typeInfo, token), cancellationToken);

    public async Task<T> ReadJsonBlobAsync<T>(OciDigest digest, JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken)
    {
        await using var stream = OpenBlob(digest);
        return await DeserializeAsync(stream, typeInfo, $"blob {digest} in {Root}", cancellationToken);
    }

    /// <summary>The layout's index.json, or an empty index when none was written yet.</summary>
    public async Task<OciIndex> ReadIndexAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(Root, IndexFileName);
        if (!File.Exists(path))
        {
            return new OciIndex(2, OciMediaTypes.ImageIndex, []);
        }

        await using var stream = File.OpenRead(path);
        return await DeserializeAsync(stream, OciJson.Context.OciIndex, path, cancellationToken);
    }

    /// <summary>
    /// Records <paramref name="manifest"/> as the image <paramref name="name"/> in index.json, replacing an earlier
    /// manifest of that name and keeping the others, sorted by name so the file is deterministic.
    /// </summary>
    public async Task<OciDescriptor> SetImageAsync(ImageReference name, OciDescriptor manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(manifest);
        var entry = manifest with
        {
            Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                [OciMediaTypes.ContainerdImageNameAnnotation] = name.ToString(),
                [OciMediaTypes.RefNameAnnotation] = name.Tag ?? name.ManifestReference,
            },
        };
        var index = await ReadIndexAsync(cancellationToken);
        var manifests = index.Manifests
            .Where(m => NameOf(m) != entry.Annotations[OciMediaTypes.ContainerdImageNameAnnotation])
            .Append(entry)
            .OrderBy(NameOf, StringComparer.Ordinal)
            .ToList();
        await WriteAtomicAsync(
            Path.Combine(Root, IndexFileName),
            stream => JsonSerializer.SerializeAsync(stream, new OciIndex(2, OciMediaTypes.ImageIndex, manifests), OciJson.Context.OciIndex, cancellationToken),
            cancellationToken);
        return entry;
    }

    /// <summary>
    /// Finds an image's manifest: by name when given, else the layout's only image.
    /// NotFound when there is no such image; FailedPrecondition when no name was given and the layout holds several.
    /// </summary>
    public async Task<(OciDescriptor Descriptor, OciManifest Manifest)> FindImageAsync(ImageReference? name, CancellationToken cancellationToken)
    {
        var index = await ReadIndexAsync(cancellationToken);
        var images = index.Manifests.Where(m => m.MediaType == OciMediaTypes.ImageManifest).ToList();
        var descriptor = name is null
            ? images.Count == 1 ? images[0] : throw PodMigrateException.FailedPrecondition($"the layout {Root} holds {images.Count} images; name the one to use")
            : images.FirstOrDefault(m => NameOf(m) == name.ToString()) ?? throw PodMigrateException.NotFound($"the layout {Root} has no image named {name}");
        var manifest = await ReadJsonBlobAsync(descriptor.ParsedDigest, OciJson.Context.OciManifest, cancellationToken);
        return (descriptor, manifest);
    }

    private static string NameOf(OciDescriptor descriptor)
        => descriptor.Annotations?.GetValueOrDefault(OciMediaTypes.ContainerdImageNameAnnotation)
            ?? descriptor.Annotations?.GetValueOrDefault(OciMediaTypes.RefNameAnnotation)
            ?? string.Empty;

    private static async Task<T> DeserializeAsync<T>(Stream stream, JsonTypeInfo<T> typeInfo, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(stream, typeInfo, cancellationToken)
                ?? throw new PodMigrateException(ErrorKind.DataLoss, $"{what} is empty JSON");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{what} is not a valid {typeof(T).Name}: {e.Message}", e);
        }
    }

    private static async Task WriteAtomicAsync(string path, Func<Stream, Task> write, CancellationToken cancellationToken)
    {
        var temp = $"{path}.tmp-{Guid.NewGuid():N}";
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
            {
                await write(file);
                await file.FlushAsync(cancellationToken);
                file.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>A write-only pass-through that hashes (sha256) and counts what goes through it.</summary>
    internal sealed class HashingStream(Stream inner, bool leaveOpen) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public long BytesWritten { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }

        public OciDigest GetDigest() => OciDigest.FromHash(_hash.GetCurrentHash());

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            BytesWritten += buffer.Length;
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _hash.AppendData(buffer.Span);
            BytesWritten += buffer.Length;
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _hash.Dispose();
                if (!leaveOpen)
                {
                    inner.Dispose();
                }
            }

            base.Dispose(disposing);
        }
    }
}
