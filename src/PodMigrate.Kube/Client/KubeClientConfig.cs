using System.Text;
using System.Text.Json;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Client;

/// <summary>
/// Where the API server is and how to authenticate to it, resolved from a kubeconfig (its current context, or a named one)
/// or from the pod's service account. Certificates and keys are PEM text; file references are read when loading.
/// </summary>
public sealed record KubeClientConfig
{
    public const string ServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    public required Uri Server { get; init; }

    /// <summary>PEM bundle of the CAs that sign the server's certificate; null: the system's trust store.</summary>
    public string? CertificateAuthorityPem { get; init; }

    public bool InsecureSkipTlsVerify { get; init; }

    public string? BearerToken { get; init; }

    public string? ClientCertificatePem { get; init; }

    public string? ClientKeyPem { get; init; }

    /// <summary>The context's namespace (kubeconfig) or the pod's own (service account); "default" when neither says.</summary>
    public string Namespace { get; init; } = "default";

    /// <summary>Deadline of one request (not of a watch, which lasts until the server ends it or the caller cancels).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The usual order: the service account when running in a pod (KUBERNETES_SERVICE_HOST set and a token mounted),
    /// else the first file of $KUBECONFIG, else ~/.kube/config. <paramref name="getEnvironment"/> is the one place environment
    /// variables are read (tests pass their own).
    /// </summary>
    public static async Task<KubeClientConfig> LoadDefaultAsync(Func<string, string?>? getEnvironment, CancellationToken cancellationToken)
    {
        getEnvironment ??= Environment.GetEnvironmentVariable;
        var kubeconfig = getEnvironment("KUBECONFIG");
        if (string.IsNullOrEmpty(kubeconfig)
            && !string.IsNullOrEmpty(getEnvironment("KUBERNETES_SERVICE_HOST"))
            && File.Exists(Path.Combine(ServiceAccountDirectory, "token")))
        {
            return await InClusterAsync(ServiceAccountDirectory, getEnvironment, cancellationToken);
        }
        var path = !string.IsNullOrEmpty(kubeconfig)
            ? kubeconfig.Split(':', StringSplitOptions.RemoveEmptyEntries)[0]
            : Path.Combine(getEnvironment("HOME") ?? "/root", ".kube", "config");
        return await FromKubeconfigFileAsync(path, context: null, cancellationToken);
    }

    /// <summary>The service account mounted into a pod: token, ca.crt and namespace files, the server from KUBERNETES_SERVICE_HOST/PORT.</summary>
    public static async Task<KubeClientConfig> InClusterAsync(string serviceAccountDirectory, Func<string, string?>? getEnvironment, CancellationToken cancellationToken)
    {
        getEnvironment ??= Environment.GetEnvironmentVariable;
        var host = getEnvironment("KUBERNETES_SERVICE_HOST");
        var port = getEnvironment("KUBERNETES_SERVICE_PORT");
        if (string.IsNullOrEmpty(host) || string.IsNullOrEmpty(port))
        {
            throw PodMigrateException.FailedPrecondition("not running in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
        }
        // An IPv6 service host needs brackets in a URI.
        var authority = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";
        var token = (await ReadFileAsync(Path.Combine(serviceAccountDirectory, "token"), "service account token", cancellationToken)).Trim();
        var ca = await ReadFileAsync(Path.Combine(serviceAccountDirectory, "ca.crt"), "service account CA", cancellationToken);
        var namespacePath = Path.Combine(serviceAccountDirectory, "namespace");
        var ns = File.Exists(namespacePath) ? (await File.ReadAllTextAsync(namespacePath, cancellationToken)).Trim() : "default";
        return new KubeClientConfig
        {
            Server = new Uri($"https://{authority}"),
            BearerToken = token,
            CertificateAuthorityPem = ca,
            Namespace = ns.Length > 0 ? ns : "default",
        };
    }

    public static async Task<KubeClientConfig> FromKubeconfigFileAsync(string path, string? context, CancellationToken cancellationToken)
    {
        var text = await ReadFileAsync(path, "kubeconfig", cancellationToken);
        return await FromKubeconfigAsync(text, path, context, cancellationToken);
    }

    /// <summary>Parses kubeconfig YAML; relative file references resolve against the directory of <paramref name="source"/>.</summary>
    public static async Task<KubeClientConfig> FromKubeconfigAsync(string yaml, string source, string? context, CancellationToken cancellationToken)
    {
        var documents = KubeYaml.ToJsonDocuments(yaml, source);
        if (documents.Count != 1)
        {
            throw PodMigrateException.InvalidArgument($"{source}: a kubeconfig is one YAML document, found {documents.Count}");
        }
        using var document = JsonDocument.Parse(documents[0]);
        var root = document.RootElement;
        var baseDirectory = Path.GetDirectoryName(Path.GetFullPath(source)) ?? "/";
        var contextName = context ?? Str(root, "current-context");
        if (string.IsNullOrEmpty(contextName))
        {
            throw PodMigrateException.InvalidArgument($"{source}: no current-context and no context named");
        }
        var contextEntry = Named(root, "contexts", "context", contextName, source);
        var clusterEntry = Named(root, "clusters", "cluster", Str(contextEntry, "cluster") ?? "", source);
        var userName = Str(contextEntry, "user");
        var userEntry = string.IsNullOrEmpty(userName) ? default : Named(root, "users", "user", userName, source);

        var server = Str(clusterEntry, "server");
        if (string.IsNullOrEmpty(server) || !Uri.TryCreate(server, UriKind.Absolute, out var serverUri))
        {
            throw PodMigrateException.InvalidArgument($"{source}: cluster of context {contextName} has no valid server URL ({server})");
        }

        var token = Str(userEntry, "token");
        if (token is null && Str(userEntry, "tokenFile") is { } tokenFile)
        {
            token = (await ReadFileAsync(Resolve(baseDirectory, tokenFile), "token file", cancellationToken)).Trim();
        }
        if (userEntry.ValueKind == JsonValueKind.Object && (userEntry.TryGetProperty("exec", out _) || userEntry.TryGetProperty("auth-provider", out _)))
        {
            throw new PodMigrateException(ErrorKind.Unimplemented, $"{source}: user {userName} uses an exec or auth-provider plugin, which this client does not run");
        }

        return new KubeClientConfig
        {
            Server = serverUri,
            InsecureSkipTlsVerify = clusterEntry.TryGetProperty("insecure-skip-tls-verify", out var insecure) && insecure.ValueKind == JsonValueKind.True,
            CertificateAuthorityPem = await PemAsync(clusterEntry, "certificate-authority", baseDirectory, cancellationToken),
            BearerToken = token,
            ClientCertificatePem = await PemAsync(userEntry, "client-certificate", baseDirectory, cancellationToken),
            ClientKeyPem = await PemAsync(userEntry, "client-key", baseDirectory, cancellationToken),
            Namespace = Str(contextEntry, "namespace") is { Length: > 0 } ns ? ns : "default",
        };
    }

    /// <summary>A kubeconfig for this configuration (what `podmigrate apiserver --kubeconfig-out` writes).</summary>
    public string ToKubeconfigYaml(string name = "podmigrate")
    {
        var builder = new StringBuilder();
        builder.Append("apiVersion: v1\nkind: Config\n");
        builder.Append("clusters:\n- name: ").Append(name).Append("\n  cluster:\n    server: ").Append(Server.ToString().TrimEnd('/')).Append('\n');
        if (CertificateAuthorityPem is not null)
        {
            builder.Append("    certificate-authority-data: ").Append(Base64(CertificateAuthorityPem)).Append('\n');
        }
        if (InsecureSkipTlsVerify)
        {
            builder.Append("    insecure-skip-tls-verify: true\n");
        }
        builder.Append("users:\n- name: ").Append(name).Append("\n  user:");
        var userFields = 0;
        if (BearerToken is not null)
        {
            builder.Append("\n    token: ").Append(JsonSerializer.Serialize(BearerToken, KubeClientJsonContext.Default.String));
            userFields++;
        }
        if (ClientCertificatePem is not null && ClientKeyPem is not null)
        {
            builder.Append("\n    client-certificate-data: ").Append(Base64(ClientCertificatePem));
            builder.Append("\n    client-key-data: ").Append(Base64(ClientKeyPem));
            userFields++;
        }
        builder.Append(userFields == 0 ? " {}\n" : "\n");
        builder.Append("contexts:\n- name: ").Append(name).Append("\n  context:\n    cluster: ").Append(name)
            .Append("\n    user: ").Append(name).Append("\n    namespace: ").Append(Namespace).Append('\n');
        builder.Append("current-context: ").Append(name).Append('\n');
        return builder.ToString();
    }

    private static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static async Task<string?> PemAsync(JsonElement entry, string field, string baseDirectory, CancellationToken cancellationToken)
    {
        if (Str(entry, field + "-data") is { } data)
        {
            try
            {
                return Encoding.UTF8.GetString(Convert.FromBase64String(data));
            }
            catch (FormatException e)
            {
                throw new PodMigrateException(ErrorKind.InvalidArgument, $"kubeconfig {field}-data is not base64", e);
            }
        }
        return Str(entry, field) is { } file ? await ReadFileAsync(Resolve(baseDirectory, file), field, cancellationToken) : null;
    }

    private static string Resolve(string baseDirectory, string path) => Path.IsPathRooted(path) ? path : Path.Combine(baseDirectory, path);

    private static JsonElement Named(JsonElement root, string list, string field, string name, string source)
    {
        if (root.TryGetProperty(list, out var entries) && entries.ValueKind == JsonValueKind.Array)
        {
            foreach (var entry in entries.EnumerateArray())
            {
                if (Str(entry, "name") == name && entry.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.Object)
                {
                    return value;
                }
            }
        }
        throw PodMigrateException.InvalidArgument($"{source}: no {field} named \"{name}\" in {list}");
    }

    private static string? Str(JsonElement element, string name)
        => element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static async Task<string> ReadFileAsync(string path, string what, CancellationToken cancellationToken)
    {
        try
        {
            return await File.ReadAllTextAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"{what} {path} does not exist", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new PodMigrateException(ErrorKind.FailedPrecondition, $"{what} {path} is not readable", e);
        }
    }
}
