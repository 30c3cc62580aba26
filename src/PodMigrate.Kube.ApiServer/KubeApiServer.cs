using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer.Admission;
using PodMigrate.Kube.ApiServer.Authentication;
using PodMigrate.Kube.ApiServer.Authorization;
using PodMigrate.Kube.ApiServer.Subresources;
using PodMigrate.Kube.Client;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// An in-process Kubernetes API server on Kestrel: discovery, CRUD, status/binding subresources, patches, selectors,
/// watch (chunked JSON lines) and server-side Table printing, over an in-memory <see cref="ObjectStore"/>.
/// OpenAPI v3 (paths, and the schemas of custom resources) and an OpenAPI v2 without models, so that kubectl validates
/// without --validate=false (see <see cref="OpenApi"/>); field validation of custom resources (<see cref="FieldValidation"/>).
/// Authentication by static bearer tokens and client certificates, RBAC authorization over the stored roles and bindings,
/// and the self-reviews kubectl asks (see Authentication/ and Authorization/).
/// PodDisruptionBudgets with their status kept as the disruption controller does, the pods/eviction subresource with the
/// budget rules, and validating admission webhooks for evictions (see Policy/ and Admission/).
/// Not served: other admission, protobuf objects, server-side apply, garbage collection,
/// and the controllers of a cluster (nothing runs a Deployment's or DaemonSet's pods, binds a claim).
/// </summary>
public sealed partial class KubeApiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ObjectStore _store;
    private readonly ApiServerOptions _options;
    private readonly string? _certificatePem;
    private readonly ILogger _logger;
    private readonly RequestSecurity _security;
    private readonly ValidatingWebhooks _webhooks;

    private KubeApiServer(WebApplication app, ObjectStore store, ApiServerOptions options, string? certificatePem)
    {
        _app = app;
        _store = store;
        _options = options;
        _certificatePem = certificatePem;
        _logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<KubeApiServer>();
        _security = SecurityFor(options, store, _logger);
        _webhooks = new ValidatingWebhooks(store, _logger);
        BaseAddress = new Uri("http://127.0.0.1/");
    }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:41234/.</summary>
    public Uri BaseAddress { get; private set; }

    /// <summary>
    /// What an administrator needs to reach this server, as the KubernetesClient package reads it from <see cref="KubeconfigYaml"/>:
    /// address, the CA (when serving TLS) and a token in system:masters (<see cref="ApiServerOptions.BearerToken"/>, else the
    /// first such of <see cref="ApiServerOptions.Tokens"/>). Each call returns a fresh configuration to adjust.
    /// </summary>
    public k8s.KubernetesClientConfiguration ClientConfig => ClientConfigFor(AdminToken);

    /// <summary>What a client authenticating with <paramref name="bearerToken"/> needs to reach this server.</summary>
    public k8s.KubernetesClientConfiguration ClientConfigFor(string? bearerToken)
    {
        using var yaml = new MemoryStream(Encoding.UTF8.GetBytes(KubeconfigYaml("podmigrate", bearerToken)));
        return k8s.KubernetesClientConfiguration.BuildConfigFromConfigFile(yaml);
    }

    private string? AdminToken => _options.BearerToken
        ?? _options.Tokens.FirstOrDefault(t => t.User.Groups.Contains(UserInfo.MastersGroup, StringComparer.Ordinal))?.Token;

    /// <summary>A kubeconfig for this server (what `podmigrate apiserver --kubeconfig-out` writes for kubectl and the other verbs).</summary>
    public string KubeconfigYaml(string name = "podmigrate") => KubeconfigYaml(name, AdminToken);

    /// <summary>A kubeconfig for this server that authenticates with <paramref name="bearerToken"/>.</summary>
    public string KubeconfigYaml(string name, string? bearerToken)
    {
        var builder = new StringBuilder();
        builder.Append("apiVersion: v1\nkind: Config\n");
        builder.Append("clusters:\n- name: ").Append(name).Append("\n  cluster:\n    server: ").Append(BaseAddress.ToString().TrimEnd('/')).Append('\n');
        if (_certificatePem is not null)
        {
            builder.Append("    certificate-authority-data: ").Append(Convert.ToBase64String(Encoding.UTF8.GetBytes(_certificatePem))).Append('\n');
        }
        // Without a token the context names no user: the KubernetesClient package refuses a user entry without credentials.
        if (bearerToken is not null)
        {
            builder.Append("users:\n- name: ").Append(name).Append("\n  user:\n    token: ")
                .Append(JsonSerializer.Serialize(bearerToken, KubeClientJsonContext.Default.String)).Append('\n');
        }
        builder.Append("contexts:\n- name: ").Append(name).Append("\n  context:\n    cluster: ").Append(name);
        if (bearerToken is not null)
        {
            builder.Append("\n    user: ").Append(name);
        }
        builder.Append("\n    namespace: default\n");
        builder.Append("current-context: ").Append(name).Append('\n');
        return builder.ToString();
    }

    public static async Task<KubeApiServer> StartAsync(ApiServerOptions options, Action<ILoggingBuilder>? configureLogging, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        configureLogging?.Invoke(builder.Logging);
        X509Certificate2? certificate = options.UseTls ? SelfSignedCertificate() : null;
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(options.BindAddress, options.Port, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                if (certificate is not null)
                {
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = certificate,
                        // Asked for, verified by the authenticator against the client CA (401, not a failed handshake), as kube-apiserver does.
                        ClientCertificateMode = options.ClientCertificateAuthorityPem is null ? ClientCertificateMode.NoCertificate : ClientCertificateMode.AllowCertificate,
                        ClientCertificateValidation = (_, _, _) => true,
                    });
                }
            });
        });
        var app = builder.Build();
        var store = new ObjectStore(options);
        var server = new KubeApiServer(app, store, options, certificate?.ExportCertificatePem());
        app.Run(server.HandleAsync);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var port = new Uri(address.Replace("[::]", "localhost", StringComparison.Ordinal)).Port;
        var host = options.BindAddress.Equals(IPAddress.Any) || options.BindAddress.Equals(IPAddress.IPv6Any) ? "127.0.0.1" : options.BindAddress.ToString();
        server.BaseAddress = new Uri($"{(certificate is null ? "http" : "https")}://{(host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host)}:{port}/");
        return server;
    }

    /// <summary>Writes a kubeconfig for this server (mode 0600: it may hold the token), via a temporary name and a rename.</summary>
    public async Task WriteKubeconfigAsync(string path, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        await File.WriteAllTextAsync(temporary, KubeconfigYaml(), cancellationToken);
        File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Completes on SIGTERM / Ctrl-C (the host's console lifetime takes those signals) or when the token is cancelled.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(stopping.Token);
        await _app.DisposeAsync();
        _store.Dispose();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        try
        {
            if (await _security.CheckAsync(context) is { } refusal)
            {
                await WriteJsonAsync(context, refusal.Code, refusal.Status);
                return;
            }
            if (await _security.TryReviewAsync(context) is { } review)
            {
                await WriteJsonAsync(context, 201, review);
                return;
            }
            await RouteAsync(context);
        }
        catch (ApiStatusException e)
        {
            if (e.Status["details"]?["retryAfterSeconds"].AsLong() is > 0 and var retryAfter)
            {
                context.Response.Headers.RetryAfter = retryAfter.ToString(CultureInfo.InvariantCulture);
            }
            if (!context.Response.HasStarted)
            {
                await WriteJsonAsync(context, e.Code, e.Status);
            }
        }
        catch (PodMigrateException e)
        {
            var (code, reason) = ToHttp(e.Kind);
            await WriteStatusAsync(context, code, reason, e.Message);
        }
        catch (StrictDecodingException e)
        {
            await WriteStatusAsync(context, 400, "BadRequest", e.Message);
        }
        catch (JsonException e)
        {
            await WriteStatusAsync(context, 400, "BadRequest", $"the request body is not valid JSON: {e.Message}");
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away (a watch being stopped): nothing to answer.
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or KeyNotFoundException)
        {
            // A body of the wrong shape (a string where an object belongs…) surfaces as one of these from System.Text.Json.Nodes.
            LogRequestFailed(_logger, request.Method, request.Path, e);
            await WriteStatusAsync(context, 400, "BadRequest", $"malformed request: {e.Message}");
        }
    }

    private async Task RouteAsync(HttpContext context)
    {
        var path = context.Request.Path.Value?.TrimEnd('/') ?? "";
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Select(Uri.UnescapeDataString).ToArray();
        switch (segments)
        {
            case ["version"]:
                await WriteJsonAsync(context, 200, Discovery.Version());
                return;
            case ["healthz" or "readyz" or "livez"]:
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("ok", context.RequestAborted);
                return;
            case ["api"]:
                await WriteJsonAsync(context, 200, Discovery.CoreVersions($"{BaseAddress.Host}:{BaseAddress.Port}"));
                return;
            case ["api", "v1"]:
                await WriteJsonAsync(context, 200, Discovery.Resources("v1", _store.Types().Where(t => t.Group.Length == 0)));
                return;
            case ["apis"]:
                await WriteJsonAsync(context, 200, Discovery.Groups(_store.Types()));
                return;
            case ["apis", var group]:
                var groupTypes = _store.Types().Where(t => t.Group == group).ToList();
                await (groupTypes.Count == 0 ? NotFoundAsync(context) : WriteJsonAsync(context, 200, Discovery.Group(group, groupTypes)));
                return;
            case ["apis", var group, var version]:
                var versionTypes = _store.Types().Where(t => t.Group == group && t.Version == version).ToList();
                await (versionTypes.Count == 0 ? NotFoundAsync(context) : WriteJsonAsync(context, 200, Discovery.Resources($"{group}/{version}", versionTypes)));
                return;
            case ["api", "v1", .. var rest] when rest.Length > 0:
                await ResourceAsync(context, "", "v1", rest);
                return;
            case ["apis", var group, var version, .. var rest] when rest.Length > 0:
                await ResourceAsync(context, group, version, rest);
                return;
            case ["openapi", "v3"]:
                await WriteJsonAsync(context, 200, OpenApi.V3Index(_store.Types()));
                return;
            case ["openapi", "v3", .. var groupVersion]:
            {
                var key = string.Join('/', groupVersion);
                var served = _store.Types().Where(t => OpenApi.V3Key(t.Group, t.Version) == key).ToList();
                await (served.Count == 0 ? NotFoundAsync(context) : WriteJsonAsync(context, 200, OpenApi.V3Document(served)));
                return;
            }
            case ["openapi", "v2"]:
                var accept = context.Request.Headers.Accept.ToString();
                if (accept.Contains(OpenApi.V2ProtobufMediaType, StringComparison.Ordinal) || accept.Contains(OpenApi.V2ProtobufContentType, StringComparison.Ordinal))
                {
                    context.Response.StatusCode = 200;
                    context.Response.ContentType = OpenApi.V2ProtobufContentType;
                    await context.Response.Body.WriteAsync(OpenApi.V2Protobuf(), context.RequestAborted);
                    return;
                }
                await WriteJsonAsync(context, 200, OpenApi.V2Json());
                return;
            default:
                await NotFoundAsync(context);
                return;
        }
    }

    private static Task NotFoundAsync(HttpContext context) => WriteStatusAsync(context, 404, "NotFound", "the server could not find the requested resource");

    private async Task ResourceAsync(HttpContext context, string group, string version, string[] rest)
    {
        string? ns = null;
        if (rest is ["namespaces", var n, var plural, ..] && _store.FindType(group, version, plural) is { Namespaced: true })
        {
            ns = n;
            rest = rest[2..];
        }
        var type = _store.FindType(group, version, rest[0]);
        if (type is null || (type.Namespaced && ns is null && rest.Length > 1) || rest.Length > 3)
        {
            await NotFoundAsync(context);
            return;
        }
        var name = rest.Length > 1 ? rest[1] : null;
        var subresource = rest.Length > 2 ? rest[2] : null;
        var request = context.Request;
        var ct = context.RequestAborted;
        var now = _options.TimeProvider.GetUtcNow();
        var wantsTable = Tables.Wanted(request.Headers.Accept.ToString());
        var includeObject = request.Query["includeObject"].ToString();

        switch (request.Method, name, subresource)
        {
            case ("GET", null, null) when IsTrue(request.Query["watch"]):
                await WatchAsync(context, type, ns, wantsTable, includeObject);
                return;
            case ("GET", null, null):
            {
                var (items, rv) = _store.List(type, ns, Selector.ParseLabels(request.Query["labelSelector"]), Selector.ParseFields(request.Query["fieldSelector"]));
                var body = wantsTable
                    ? Tables.Render(type, items, rv, includeObject, now)
                    : new JsonObject
                    {
                        ["kind"] = type.Kind + "List",
                        ["apiVersion"] = type.ApiVersion,
                        ["metadata"] = new JsonObject { ["resourceVersion"] = rv },
                        ["items"] = new JsonArray(items.Select(i => (JsonNode?)i).ToArray()),
                    };
                await WriteJsonAsync(context, 200, body);
                return;
            }
            case ("GET", not null, null or "status"):
            {
                var obj = _store.Get(type, ns, name);
                await WriteJsonAsync(context, 200, wantsTable ? Tables.Render(type, [obj], _store.CurrentResourceVersion, includeObject, now) : obj);
                return;
            }
            case ("POST", null, null):
            {
                var body = await ReadObjectAsync(context);
                var warnings = new List<string>();
                FieldValidation.Check(type, body, FieldValidation.Parse(request.Query["fieldValidation"]), warnings);
                var created = _store.Create(type, ns, body);
                await WriteJsonAsync(context, 201, created, warnings);
                return;
            }
            case ("POST", not null, "binding") when type == BuiltInTypes.Pods:
                await WriteJsonAsync(context, 201, PodBinding.Bind(_store, ns!, name, await ReadObjectAsync(context)));
                return;
            case ("POST", not null, "eviction") when type == BuiltInTypes.Pods:
                await EvictAsync(context, ns!, name);
                return;
            case ("PUT", not null, null or "status") when subresource is null || type.HasStatus:
            {
                var body = await ReadObjectAsync(context);
                var warnings = new List<string>();
                FieldValidation.Check(type, body, FieldValidation.Parse(request.Query["fieldValidation"]), warnings);
                await WriteJsonAsync(context, 200, _store.Update(type, ns, name, body, statusOnly: subresource is not null), warnings);
                return;
            }
            case ("PATCH", not null, null or "status") when subresource is null || type.HasStatus:
            {
                var patch = JsonNode.Parse(await ReadBodyAsync(context));
                var mode = FieldValidation.Parse(request.Query["fieldValidation"]);
                var warnings = new List<string>();
                var patched = _store.Patch(type, ns, name, request.ContentType ?? "", patch, statusOnly: subresource is not null,
                    validate: result => FieldValidation.Check(type, result, mode, warnings));
                await WriteJsonAsync(context, 200, patched, warnings);
                return;
            }
            case ("DELETE", not null, null):
            {
                var body = await ReadBodyAsync(context);
                var options = body.Length == 0 ? null : JsonNode.Parse(body) as JsonObject;
                var (obj, gone) = _store.Delete(type, ns, name, options);
                await WriteJsonAsync(context, gone ? 200 : 202, obj);
                return;
            }
            case ("DELETE", null, null):
            {
                var (items, _) = _store.List(type, ns, Selector.ParseLabels(request.Query["labelSelector"]), Selector.ParseFields(request.Query["fieldSelector"]));
                foreach (var item in items)
                {
                    _store.Delete(type, item["metadata"]?["namespace"]?.GetValue<string>(), item["metadata"]!["name"]!.GetValue<string>(), null);
                }
                await WriteJsonAsync(context, 200, new JsonObject { ["kind"] = type.Kind + "List", ["apiVersion"] = type.ApiVersion, ["metadata"] = new JsonObject(), ["items"] = new JsonArray() });
                return;
            }
            default:
                await WriteStatusAsync(context, 405, "MethodNotAllowed", $"{request.Method} is not supported on {request.Path}");
                return;
        }
    }

    /// <summary>
    /// pods/{name}/eviction: the Eviction (policy/v1 or v1beta1) is admitted by the validating webhooks first (CREATE of
    /// pods/eviction), then the eviction REST checks the pod's disruption budget and deletes it (<see cref="ObjectStore.Evict"/>).
    /// </summary>
    private async Task EvictAsync(HttpContext context, string ns, string name)
    {
        var eviction = await ReadObjectAsync(context);
        var apiVersion = eviction["apiVersion"]?.GetValue<string>() ?? "policy/v1";
        if (eviction["kind"]?.GetValue<string>() is { } kind && kind != "Eviction")
        {
            throw PodMigrateException.InvalidArgument($"the body is a {kind}, not an Eviction");
        }
        if (eviction["metadata"]?["name"]?.GetValue<string>() is { Length: > 0 } named && named != name)
        {
            throw PodMigrateException.InvalidArgument($"name in URL does not match name in Eviction object");
        }
        _store.Get(BuiltInTypes.Pods, ns, name); // 404 before admission, as the real server's pod lookup does
        var user = context.Items[typeof(UserInfo)] as UserInfo ?? UserInfo.Admin();
        var dryRun = context.Request.Query["dryRun"].Count > 0;
        var version = apiVersion.Contains('/', StringComparison.Ordinal) ? apiVersion[(apiVersion.IndexOf('/', StringComparison.Ordinal) + 1)..] : "v1";
        await _webhooks.ValidateAsync(new AdmissionAttributes("CREATE", "", "v1", "pods", "eviction", BuiltInTypes.PolicyGroup, version, "Eviction",
            ns, name, eviction, null, user, dryRun), context.RequestAborted);
        if (dryRun)
        {
            // Admitted; a dry run changes nothing (the budget is not spent, the pod not deleted).
            await WriteJsonAsync(context, 201, SubresourceStatus.Created());
            return;
        }
        await WriteJsonAsync(context, 201, PodEviction.Evict(_store, ns, name, eviction));
    }

    private async Task WatchAsync(HttpContext context, ResourceType type, string? ns, bool asTable, string? includeObject)
    {
        var request = context.Request;
        var watcher = _store.Watch(type, ns, Selector.ParseLabels(request.Query["labelSelector"]), Selector.ParseFields(request.Query["fieldSelector"]), request.Query["resourceVersion"]);
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "application/json";
        if (watcher is null)
        {
            // What the real server does: a 200 stream whose one event is an ERROR carrying a 410 Status.
            var status = StatusBody(410, "Expired", $"too old resource version: {request.Query["resourceVersion"]} ({_store.CurrentResourceVersion})");
            await WriteLineAsync(response, new JsonObject { ["type"] = "ERROR", ["object"] = status }, context.RequestAborted);
            return;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        if (int.TryParse(request.Query["timeoutSeconds"], CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        }
        try
        {
            await response.StartAsync(context.RequestAborted);
            await response.Body.FlushAsync(context.RequestAborted);
            var first = true;
            await foreach (var change in watcher.Events.Reader.ReadAllAsync(timeout.Token))
            {
                JsonNode obj = asTable
                    ? Tables.Render(type, [change.Object], change.Object["metadata"]?["resourceVersion"]?.GetValue<string>() ?? "", includeObject, _options.TimeProvider.GetUtcNow(), withColumns: first)
                    : change.Object;
                first = false;
                await WriteLineAsync(response, new JsonObject { ["type"] = change.Type, ["object"] = obj.DeepClone() }, context.RequestAborted);
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // timeoutSeconds reached or the client left: the stream ends normally.
        }
        finally
        {
            _store.StopWatch(watcher);
        }
    }

    private static async Task WriteLineAsync(HttpResponse response, JsonObject line, CancellationToken cancellationToken)
    {
        await response.WriteAsync(line.ToJsonString() + "\n", cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private static bool IsTrue(string? value) => value is "1" or "true" or "True";

    private static async Task<string> ReadBodyAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        return await reader.ReadToEndAsync(context.RequestAborted);
    }

    private static async Task<JsonObject> ReadObjectAsync(HttpContext context)
        => JsonNode.Parse(await ReadBodyAsync(context)) as JsonObject ?? throw PodMigrateException.InvalidArgument("the request body must be a JSON object");

    private static async Task WriteJsonAsync(HttpContext context, int code, JsonNode body, IReadOnlyList<string>? warnings = null)
    {
        foreach (var warning in warnings ?? [])
        {
            // RFC 7234 warn-code 299 ("miscellaneous persistent warning"), agent "-", the text as a quoted-string.
            context.Response.Headers.Append("Warning", $"299 - \"{warning.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"");
        }
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted);
    }

    private static Task WriteStatusAsync(HttpContext context, int code, string reason, string message)
        => context.Response.HasStarted ? Task.CompletedTask : WriteJsonAsync(context, code, StatusBody(code, reason, message));

    private static JsonObject StatusBody(int code, string reason, string message) => ApiStatusException.FailureStatus(code, reason, message);

    /// <summary>The edge: error kinds become HTTP codes and Status reasons.</summary>
    private static (int Code, string Reason) ToHttp(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => (404, "NotFound"),
        ErrorKind.AlreadyExists => (409, "AlreadyExists"),
        ErrorKind.Aborted => (409, "Conflict"),
        ErrorKind.InvalidArgument => (422, "Invalid"),
        ErrorKind.FailedPrecondition => (400, "BadRequest"),
        ErrorKind.Unimplemented => (415, "UnsupportedMediaType"),
        _ => (500, "InternalError"),
    };

    private static RequestSecurity SecurityFor(ApiServerOptions options, ObjectStore store, ILogger logger)
    {
        if (options.ClientCertificateAuthorityPem is not null && !options.UseTls)
        {
            throw PodMigrateException.InvalidArgument("client certificate authentication needs TLS (UseTls)");
        }
        var clientAuthorities = new X509Certificate2Collection();
        if (options.ClientCertificateAuthorityPem is { } pem)
        {
            clientAuthorities.ImportFromPem(pem);
        }
        var tokens = options.BearerToken is { } token ? [.. options.Tokens, new StaticToken(token, UserInfo.Admin())] : options.Tokens;
        RbacAuthorizer? authorizer = null;
        if (options.AuthorizeWithRbac)
        {
            BootstrapPolicy.Install(store);
            authorizer = new RbacAuthorizer(store);
        }
        return new RequestSecurity(new RequestAuthenticator(tokens, clientAuthorities, options.TimeProvider), authorizer, logger);
    }

    private static X509Certificate2 SelfSignedCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=podmigrate-apiserver", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        // Its own CA: clients trust exactly this certificate through the kubeconfig's certificate-authority-data.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(1));
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "{Method} {Path} failed")]
    private static partial void LogRequestFailed(ILogger logger, string method, string path, Exception exception);
}
