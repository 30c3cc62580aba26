using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>A manifest as a registry served it: its bytes (small), media type, and verified digest.</summary>
public sealed record RegistryManifest(ImageReference Reference, OciDigest Digest, string MediaType, ReadOnlyMemory<byte> Content)
{
    /// <summary>The manifest parsed, for OCI and Docker schema 2 image manifests (not for indexes).</summary>
    public OciManifest ParseImageManifest()
        => MediaType is OciMediaTypes.ImageManifest or OciMediaTypes.DockerManifest
            ? JsonSerializer.Deserialize(Content.Span, OciJson.Context.OciManifest) ?? throw new PodMigrateException(ErrorKind.DataLoss, $"manifest {Reference} is empty")
            : throw PodMigrateException.FailedPrecondition($"{Reference} is a {MediaType}, not an image manifest");
}

/// <summary>What a push did: the pinned reference and how many blobs went over the wire.</summary>
public sealed record PushResult(ImageReference Reference, OciDigest ManifestDigest, int BlobsUploaded, int BlobsSkipped, long BytesUploaded)
{
    /// <summary><c>registry/repository@sha256:…</c>: the name a runtime pulls to get exactly this image.</summary>
    public ImageReference Pinned => Reference.PinnedTo(ManifestDigest);
}

/// <summary>
/// A client of the Docker Registry HTTP API v2 (distribution) for what PodMigrate needs: push an image from an OCI
/// layout (blobs the registry already has are skipped; uploads are monolithic), read a manifest, stream a blob.
/// No authentication. Registries on loopback are spoken to over plain http, others over https.
/// Failures are <see cref="PodMigrateException"/>s: Unavailable when the registry cannot be reached or fails (5xx),
/// NotFound for unknown names, blobs and manifests, DataLoss when content does not match its digest.
/// </summary>
public sealed partial class RegistryClient
{
    private static readonly string[] ManifestAcceptTypes =
        [OciMediaTypes.ImageManifest, OciMediaTypes.ImageIndex, OciMediaTypes.DockerManifest, OciMediaTypes.DockerManifestList];

    private readonly HttpClient _http;
    private readonly ILogger _logger;

    /// <param name="http">Shared and owned by the caller; requests carry absolute URIs, so no BaseAddress is needed.</param>
    public RegistryClient(HttpClient http, ILogger<RegistryClient>? logger = null)
    {
        _http = http;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The base URI of a registry host: http for localhost / loopback addresses, https otherwise.</summary>
    public static Uri EndpointFor(string registry)
    {
        var host = registry.StartsWith('[') ? registry[..(registry.IndexOf(']', StringComparison.Ordinal) + 1)] : registry.Split(':')[0];
        var loopback = host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
        return new Uri($"{(loopback ? "http" : "https")}://{registry}/");
    }

    /// <summary>
    /// Pushes the image <paramref name="source"/> (or the layout's only image) from <paramref name="layout"/> as
    /// <paramref name="target"/>: each blob unless the registry has it, then the manifest bytes exactly as stored, so the
    /// registry's digest is the layout's. Pushing the same image again uploads nothing and gives the same digest.
    /// </summary>
    public async Task<PushResult> PushAsync(OciLayout layout, ImageReference target, ImageReference? source, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(target);
        var tag = target.Tag ?? throw PodMigrateException.InvalidArgument($"push needs a tag: {target}");
        var (descriptor, manifest) = await layout.FindImageAsync(source, cancellationToken);
        int uploaded = 0, skipped = 0;
        long bytes = 0;
        foreach (var blob in manifest.Layers.Prepend(manifest.Config))
        {
            var digest = blob.ParsedDigest;
            if (await BlobExistsAsync(target, digest, cancellationToken))
            {
                LogBlobSkipped(digest, target.Repository);
                skipped++;
                continue;
            }

            await UploadBlobAsync(target, layout, digest, cancellationToken);
            LogBlobUploaded(digest, blob.Size, target.Repository);
            uploaded++;
            bytes += blob.Size;
        }

        var manifestDigest = descriptor.ParsedDigest;
        await using (var body = layout.OpenBlob(manifestDigest))
        {
            using var request = new HttpRequestMessage(HttpMethod.Put, Url(target, $"manifests/{tag}"))
            {
                Content = new StreamContent(body),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(descriptor.MediaType);
            using var response = await SendAsync(request, target, $"pushing manifest {target}", cancellationToken);
            if (response.StatusCode != HttpStatusCode.Created)
            {
                throw await ErrorAsync(response, $"pushing manifest {target}", cancellationToken);
            }

            if (OciDigest.TryParse(DigestHeader(response), out var served) && served != manifestDigest)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"registry stored manifest {target} as {served}, expected {manifestDigest}");
            }
        }

        LogManifestPushed(target, manifestDigest, uploaded, skipped);
        return new PushResult(target, manifestDigest, uploaded, skipped, bytes);
    }

    public async Task<bool> BlobExistsAsync(ImageReference repository, OciDigest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        using var request = new HttpRequestMessage(HttpMethod.Head, Url(repository, $"blobs/{digest}"));
        using var response = await SendAsync(request, repository, $"checking blob {digest}", cancellationToken);
        return response.StatusCode switch
        {
            HttpStatusCode.OK => true,
            HttpStatusCode.NotFound => false,
            _ => throw await ErrorAsync(response, $"checking blob {digest} in {repository.Registry}/{repository.Repository}", cancellationToken),
        };
    }

    /// <summary>Fetches a manifest by tag or digest and checks that its bytes hash to the digest the registry (or the reference) names.</summary>
    public async Task<RegistryManifest> GetManifestAsync(ImageReference reference, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(reference);
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(reference, $"manifests/{reference.ManifestReference}"));
        foreach (var type in ManifestAcceptTypes)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        }

        using var response = await SendAsync(request, reference, $"getting manifest {reference}", cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw await ErrorAsync(response, $"getting manifest {reference}", cancellationToken);
        }

        var content = await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var actual = OciDigest.Compute(content);
        var expected = reference.Digest ?? (OciDigest.TryParse(DigestHeader(response), out var header) ? header : actual);
        if (actual != expected)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"manifest {reference} hashes to {actual}, expected {expected}");
        }

        var mediaType = response.Content.Headers.ContentType?.MediaType ?? OciMediaTypes.ImageManifest;
        return new RegistryManifest(reference, actual, mediaType, content);
    }

    /// <summary>Opens a blob's content as a stream (the caller verifies it against the digest if it needs to).</summary>
    public async Task<Stream> OpenBlobAsync(ImageReference repository, OciDigest digest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(repository);
        var request = new HttpRequestMessage(HttpMethod.Get, Url(repository, $"blobs/{digest}"));
        var response = await SendAsync(request, repository, $"getting blob {digest}", cancellationToken, HttpCompletionOption.ResponseHeadersRead);
        try
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw await ErrorAsync(response, $"getting blob {digest} from {repository.Registry}/{repository.Repository}", cancellationToken);
            }

            return await response.Content.ReadAsStreamAsync(cancellationToken);
        }
        catch
        {
            response.Dispose();
            request.Dispose();
            throw;
        }
    }

    private async Task UploadBlobAsync(ImageReference target, OciLayout layout, OciDigest digest, CancellationToken cancellationToken)
    {
        var doing = $"uploading blob {digest} to {target.Registry}/{target.Repository}";
        Uri location;
        using (var start = new HttpRequestMessage(HttpMethod.Post, Url(target, "blobs/uploads/")))
        using (var response = await SendAsync(start, target, doing, cancellationToken))
        {
            if (response.StatusCode != HttpStatusCode.Accepted || response.Headers.Location is null)
            {
                throw await ErrorAsync(response, doing, cancellationToken);
            }

            location = new Uri(EndpointFor(target.Registry), response.Headers.Location);
        }

        var put = new UriBuilder(location);
        put.Query = (put.Query.Length > 1 ? put.Query[1..] + "&" : string.Empty) + "digest=" + Uri.EscapeDataString(digest.ToString());
        await using var content = layout.OpenBlob(digest);
        using var request = new HttpRequestMessage(HttpMethod.Put, put.Uri) { Content = new StreamContent(content) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.ContentLength = content.Length;
        using var done = await SendAsync(request, target, doing, cancellationToken);
        if (done.StatusCode != HttpStatusCode.Created)
        {
            throw await ErrorAsync(done, doing, cancellationToken);
        }
    }

    private static Uri Url(ImageReference reference, string path) => new(EndpointFor(reference.Registry), $"v2/{reference.Repository}/{path}");

    private static string? DigestHeader(HttpResponseMessage response)
        => response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.FirstOrDefault() : null;

    private async Task<HttpResponseMessage> SendAsync(
        HttpRequestMessage request,
        ImageReference reference,
        string doing,
        CancellationToken cancellationToken,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        try
        {
            return await _http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            var reason = e.InnerException is SocketException socket ? socket.SocketErrorCode.ToString() : e.Message;
            throw PodMigrateException.Unavailable($"{doing}: registry {reference.Registry} is unavailable ({reason})", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"{doing}: registry {reference.Registry} did not answer in time", e);
        }
    }

    /// <summary>Turns a registry's error response into a typed error, with distribution's error codes in the message.</summary>
    private static async Task<PodMigrateException> ErrorAsync(HttpResponseMessage response, string doing, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        RegistryErrorBody? parsed = null;
        try
        {
            parsed = body.Length > 0 ? JsonSerializer.Deserialize(body, OciJson.Context.RegistryErrorBody) : null;
        }
        catch (JsonException)
        {
            // Not distribution's error format (a proxy's HTML page, say): the status code alone tells the kind.
        }

        var codes = parsed?.Errors?.Select(e => e.Code).OfType<string>().ToList() ?? [];
        var detail = parsed?.Errors is { Count: > 0 } errors
            ? string.Join("; ", errors.Select(e => $"{e.Code}: {e.Message}"))
            : $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
        var kind = response.StatusCode switch
        {
            HttpStatusCode.NotFound => ErrorKind.NotFound,
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => ErrorKind.FailedPrecondition,
            HttpStatusCode.TooManyRequests => ErrorKind.ResourceExhausted,
            HttpStatusCode.BadRequest when codes.Contains("DIGEST_INVALID") || codes.Contains("SIZE_INVALID") => ErrorKind.DataLoss,
            HttpStatusCode.BadRequest when codes.Contains("MANIFEST_BLOB_UNKNOWN") || codes.Contains("BLOB_UNKNOWN") => ErrorKind.FailedPrecondition,
            HttpStatusCode.BadRequest => ErrorKind.InvalidArgument,
            >= HttpStatusCode.InternalServerError => ErrorKind.Unavailable,
            _ => ErrorKind.Internal,
        };
        return new PodMigrateException(kind, $"{doing}: {detail}");
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Debug, Message = "Registry already has blob {Digest} for {Repository}; skipped")]
    private partial void LogBlobSkipped(OciDigest digest, string repository);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Debug, Message = "Uploaded blob {Digest} ({Size} bytes) to {Repository}")]
    private partial void LogBlobUploaded(OciDigest digest, long size, string repository);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Information, Message = "Pushed {Reference} as {Digest} ({Uploaded} blobs uploaded, {Skipped} already there)")]
    private partial void LogManifestPushed(ImageReference reference, OciDigest digest, int uploaded, int skipped);
}
