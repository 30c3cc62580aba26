using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Client;

/// <summary>The Kubernetes REST + watch API over HttpClient and System.Text.Json (JSON only; no protobuf).</summary>
public sealed class KubernetesApiClient : IKubernetesApi, IDisposable
{
    private const string JsonMediaType = "application/json";

    private readonly HttpClient _http;
    private readonly KubeClientConfig _config;

    public KubernetesApiClient(KubeClientConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _http = new HttpClient(CreateHandler(config), disposeHandler: true)
        {
            BaseAddress = config.Server,
            // Watches last as long as the server keeps them open; single requests get their deadline per call.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue(JsonMediaType));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("podmigrate", "1"));
        if (!string.IsNullOrEmpty(config.BearerToken))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", config.BearerToken);
        }
    }

    public KubeClientConfig Config => _config;

    public Task<T> GetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        return SendAsync(HttpMethod.Get, kind.ObjectPath(ns, name), null, kind.TypeInfo, $"get {kind} {Describe(ns, name)}", cancellationToken);
    }

    public Task<KubeList<T>> ListAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var path = kind.CollectionPath(ns) + Query(options, watch: false);
        return SendAsync(HttpMethod.Get, path, null, kind.ListTypeInfo, $"list {kind} in {ns ?? "all namespaces"}", cancellationToken);
    }

    public Task<T> CreateAsync<T>(ResourceKind<T> kind, string? ns, T value, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = JsonContent(JsonSerializer.SerializeToUtf8Bytes(value, kind.TypeInfo), JsonMediaType);
        return SendAsync(HttpMethod.Post, kind.CollectionPath(ns ?? (kind.Namespaced ? _config.Namespace : null)), body, kind.TypeInfo, $"create {kind} in {ns}", cancellationToken);
    }

    public Task BindAsync(string ns, string podName, string nodeName, CancellationToken cancellationToken)
    {
        var binding = new Binding
        {
            Metadata = new ObjectMeta { Name = podName, Namespace = ns },
            Target = new ObjectReference { ApiVersion = "v1", Kind = "Node", Name = nodeName },
        };
        var body = JsonContent(JsonSerializer.SerializeToUtf8Bytes(binding, KubeClientJsonContext.Default.Binding), JsonMediaType);
        return SendAsync(HttpMethod.Post, KubeResources.Pods.ObjectPath(ns, podName) + "/binding", body, KubeClientJsonContext.Default.KubeStatus,
            $"bind pod {ns}/{podName} to node {nodeName}", cancellationToken);
    }

    public Task<T> ReplaceAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
        => PutAsync(kind, kind.ObjectPath(ns, name), value, $"replace {kind} {Describe(ns, name)}", cancellationToken);

    public Task<T> ReplaceStatusAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
        => PutAsync(kind, kind.ObjectPath(ns, name) + "/status", value, $"replace status of {kind} {Describe(ns, name)}", cancellationToken);

    public Task<T> PatchAsync<T>(ResourceKind<T> kind, string? ns, string name, PatchType type, string patch, bool status, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(patch);
        var path = kind.ObjectPath(ns, name) + (status ? "/status" : "");
        var body = JsonContent(Encoding.UTF8.GetBytes(patch), PatchTypes.ContentType(type));
        return SendAsync(HttpMethod.Patch, path, body, kind.TypeInfo, $"patch {(status ? "status of " : "")}{kind} {Describe(ns, name)}", cancellationToken);
    }

    public async Task<T?> DeleteAsync<T>(ResourceKind<T> kind, string? ns, string name, DeleteOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = options is null ? null : JsonContent(JsonSerializer.SerializeToUtf8Bytes(options, KubeClientJsonContext.Default.DeleteOptions), JsonMediaType);
        var element = await SendAsync(HttpMethod.Delete, kind.ObjectPath(ns, name), body, KubeClientJsonContext.Default.JsonElement,
            $"delete {kind} {Describe(ns, name)}", cancellationToken);
        // The server answers with the object (still there while finalizers or a grace period remain) or a Status when it is gone.
        if (element.ValueKind != JsonValueKind.Object || (element.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String && k.GetString() == "Status"))
        {
            return null;
        }
        return element.Deserialize(kind.TypeInfo);
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var doing = $"watch {kind} in {ns ?? "all namespaces"}";
        using var request = new HttpRequestMessage(HttpMethod.Get, kind.CollectionPath(ns) + Query(options, watch: true));
        using var response = await SendRawAsync(request, HttpCompletionOption.ResponseHeadersRead, doing, deadline: null, cancellationToken);
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (await ReadLineAsync(reader, doing, cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }
            yield return ParseWatchLine(line, kind, doing);
        }
    }

    public void Dispose() => _http.Dispose();

    private static WatchEvent<T> ParseWatchLine<T>(string line, ResourceKind<T> kind, string doing)
        where T : class
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            var type = root.GetProperty("type").GetString();
            var obj = root.GetProperty("object");
            return type switch
            {
                "ADDED" => new WatchEvent<T>(WatchEventType.Added, Deserialize(obj, kind.TypeInfo)),
                "MODIFIED" => new WatchEvent<T>(WatchEventType.Modified, Deserialize(obj, kind.TypeInfo)),
                "DELETED" => new WatchEvent<T>(WatchEventType.Deleted, Deserialize(obj, kind.TypeInfo)),
                "BOOKMARK" => new WatchEvent<T>(WatchEventType.Bookmark, Deserialize(obj, kind.TypeInfo)),
                "ERROR" => throw StatusError(obj, doing),
                _ => throw new PodMigrateException(ErrorKind.Internal, $"{doing}: unknown watch event type {type}"),
            };
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new PodMigrateException(ErrorKind.Internal, $"{doing}: malformed watch event: {Truncate(line)}", e);
        }
    }

    private static PodMigrateException StatusError(JsonElement statusElement, string doing)
    {
        var status = statusElement.Deserialize(KubeClientJsonContext.Default.KubeStatus) ?? new KubeStatus();
        var code = status.Code is { } c and >= 100 and < 600 ? (HttpStatusCode)c : HttpStatusCode.InternalServerError;
        return KubeApiErrors.ToException(code, status, doing);
    }

    private static T Deserialize<T>(JsonElement element, JsonTypeInfo<T> typeInfo)
        => element.Deserialize(typeInfo) ?? throw new JsonException($"null {typeof(T).Name}");

    private static async Task<string?> ReadLineAsync(StreamReader reader, string doing, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadLineAsync(cancellationToken);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw PodMigrateException.Unavailable($"{doing}: the stream broke: {e.Message}", e);
        }
    }

    private Task<T> PutAsync<T>(ResourceKind<T> kind, string path, T value, string doing, CancellationToken cancellationToken)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        var body = JsonContent(JsonSerializer.SerializeToUtf8Bytes(value, kind.TypeInfo), JsonMediaType);
        return SendAsync(HttpMethod.Put, path, body, kind.TypeInfo, doing, cancellationToken);
    }

    private async Task<TResult> SendAsync<TResult>(HttpMethod method, string path, HttpContent? body, JsonTypeInfo<TResult> typeInfo, string doing, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_config.RequestTimeout);
        using var response = await SendRawAsync(request, HttpCompletionOption.ResponseContentRead, doing, deadline, cancellationToken);
        var bytes = await response.Content.ReadAsByteArrayAsync(deadline.Token);
        try
        {
            return JsonSerializer.Deserialize(bytes, typeInfo) ?? throw new JsonException("null document");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.Internal, $"{doing}: the server's answer is not a {typeof(TResult).Name}: {e.Message}", e);
        }
    }

    /// <summary>Sends and maps transport failures, deadlines and non-2xx answers to typed errors; the caller owns the response.</summary>
    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, HttpCompletionOption completion, string doing, CancellationTokenSource? deadline, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, deadline?.Token ?? cancellationToken);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested && deadline is not null)
        {
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"{doing}: no answer from {_config.Server} within {_config.RequestTimeout}", e);
        }
        catch (HttpRequestException e)
        {
            throw PodMigrateException.Unavailable($"{doing}: {_config.Server} is unreachable: {e.Message}", e);
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            throw KubeApiErrors.ToException(response.StatusCode, ParseStatus(text, response.StatusCode), doing);
        }
    }

    private static KubeStatus ParseStatus(string text, HttpStatusCode code)
    {
        try
        {
            if (JsonSerializer.Deserialize(text, KubeClientJsonContext.Default.KubeStatus) is { Kind: "Status" } status)
            {
                return status;
            }
        }
        catch (JsonException)
        {
            // Not a Status (a proxy's HTML page, plain text): keep the text as the message.
        }
        return new KubeStatus { Code = (int)code, Message = Truncate(text) };
    }

    private static string Query(ListOptions? options, bool watch)
    {
        var parts = new List<string>();
        if (watch)
        {
            parts.Add("watch=1");
        }
        if (options is not null)
        {
            Add(parts, "labelSelector", options.LabelSelector);
            Add(parts, "fieldSelector", options.FieldSelector);
            Add(parts, "resourceVersion", options.ResourceVersion);
            if (watch && options.TimeoutSeconds is { } timeout)
            {
                parts.Add(FormattableString.Invariant($"timeoutSeconds={timeout}"));
            }
            if (watch && options.AllowWatchBookmarks)
            {
                parts.Add("allowWatchBookmarks=true");
            }
        }
        return parts.Count == 0 ? "" : "?" + string.Join('&', parts);

        static void Add(List<string> parts, string name, string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                parts.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }
    }

    private static ByteArrayContent JsonContent(byte[] bytes, string mediaType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    private static string Describe(string? ns, string name) => ns is null ? name : $"{ns}/{name}";

    private static string Truncate(string text) => text.Length <= 512 ? text : text[..512] + "…";

    private static SocketsHttpHandler CreateHandler(KubeClientConfig config)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(10),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        if (config.ClientCertificatePem is not null && config.ClientKeyPem is not null)
        {
            handler.SslOptions.ClientCertificates = [X509Certificate2.CreateFromPem(config.ClientCertificatePem, config.ClientKeyPem)];
        }
        if (config.InsecureSkipTlsVerify)
        {
#pragma warning disable CA5359 // The user asked for it: insecure-skip-tls-verify in the kubeconfig.
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
        }
        else if (config.CertificateAuthorityPem is not null)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPem(config.CertificateAuthorityPem);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => TrustedBy(roots, certificate, errors);
        }
        return handler;
    }

    /// <summary>The server's chain must end in one of the kubeconfig's CAs (not the system store); the host name must still match.</summary>
    private static bool TrustedBy(X509Certificate2Collection roots, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(leaf);
    }
}
