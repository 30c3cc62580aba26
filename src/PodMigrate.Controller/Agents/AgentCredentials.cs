using System.Security.Cryptography;
using System.Text;
using k8s;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tls;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// What the controller presents to agents: its client certificate and the CA their certificates must chain to (from a
/// kubernetes.io/tls Secret or a directory), or nothing at all when configured insecure for a local cluster.
/// </summary>
internal sealed class AgentCredentials : IDisposable
{
    /// <summary>A certificate and its key (tls.crt, tls.key; ca.crt by convention when the CA travels along).</summary>
    private const string TlsSecretType = "kubernetes.io/tls";

    private readonly TlsCertificates? _certificates;

    private AgentCredentials(TlsCertificates? certificates, string source, string fingerprint)
    {
        _certificates = certificates;
        Source = source;
        Fingerprint = fingerprint;
    }

    /// <summary>Cleartext, no certificates.</summary>
    public static AgentCredentials Insecure { get; } = new(null, "insecure (cleartext)", "");

    public bool IsInsecure => _certificates is null;

    /// <summary>"secret podmigrate-system/podmigrate-controller-tls", "directory /etc/podmigrate/tls", "insecure (cleartext)".</summary>
    public string Source { get; }

    /// <summary>A digest of the PEM material: equal fingerprints mean nothing was rotated.</summary>
    public string Fingerprint { get; }

    /// <summary>The scheme of TCP agent addresses with these credentials.</summary>
    public string Scheme => IsInsecure ? Uri.UriSchemeHttp : Uri.UriSchemeHttps;

    public static AgentCredentials FromPem(string certificatePem, string keyPem, string caPem, string source)
    {
        var certificates = TlsCertificates.FromPem(certificatePem, keyPem, caPem, source);
        var fingerprint = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', certificatePem, keyPem, caPem))));
        return new AgentCredentials(certificates, source, fingerprint);
    }

    /// <summary>tls.crt, tls.key and ca.crt of a directory (a mounted Secret).</summary>
    public static async Task<AgentCredentials> FromDirectoryAsync(string directory, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(directory))
        {
            throw PodMigrateException.NotFound($"TLS directory {directory} for the agents' mutual TLS does not exist");
        }
        async Task<string> Read(string name)
        {
            var path = Path.Combine(directory, name);
            return File.Exists(path)
                ? await File.ReadAllTextAsync(path, cancellationToken)
                : throw PodMigrateException.NotFound($"TLS directory {directory} has no {name} (it needs {TlsFileNames.Certificate}, {TlsFileNames.Key} and {TlsFileNames.CaBundle})");
        }
        return FromPem(await Read(TlsFileNames.Certificate), await Read(TlsFileNames.Key), await Read(TlsFileNames.CaBundle), $"directory {directory}");
    }

    /// <summary>A Secret of type kubernetes.io/tls with tls.crt, tls.key and ca.crt, read through the API server.</summary>
    public static async Task<AgentCredentials> FromSecretAsync(IKubernetesApi api, string ns, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(api);
        var source = $"secret {ns}/{name}";
        V1Secret secret;
        try
        {
            secret = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedSecretAsync(name, ns, cancellationToken: t), $"get {source}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw new PodMigrateException(ErrorKind.NotFound,
                $"{source} does not exist: it holds the controller's client certificate for the agents (type {TlsSecretType} with {TlsFileNames.Certificate}, {TlsFileNames.Key}, {TlsFileNames.CaBundle})", e);
        }
        if (secret.Type is { Length: > 0 } type && type != TlsSecretType && type != "Opaque")
        {
            throw PodMigrateException.FailedPrecondition($"{source} is of type {type}, not {TlsSecretType}");
        }
        string Entry(string key)
            => secret.Data?.TryGetValue(key, out var bytes) == true && bytes.Length > 0
                ? Encoding.UTF8.GetString(bytes)
                : throw PodMigrateException.FailedPrecondition($"{source} has no {key} (a {TlsSecretType} Secret with {TlsFileNames.Certificate}, {TlsFileNames.Key} and {TlsFileNames.CaBundle})");
        return FromPem(Entry(TlsFileNames.Certificate), Entry(TlsFileNames.Key), Entry(TlsFileNames.CaBundle), source);
    }

    /// <summary>The credentials the options name: insecure, a directory, or the Secret.</summary>
    public static async Task<AgentCredentials> LoadAsync(AgentConnectionOptions options, IKubernetesApi? api, CancellationToken cancellationToken)
    {
        if (options.Insecure)
        {
            return Insecure;
        }
        if (!string.IsNullOrEmpty(options.TlsDirectory))
        {
            return await FromDirectoryAsync(options.TlsDirectory, cancellationToken);
        }
        if (api is null)
        {
            throw PodMigrateException.FailedPrecondition($"the agents' TLS Secret {options.EffectiveTlsSecretNamespace}/{options.TlsSecretName} cannot be read without a Kubernetes API client: set Agents:TlsDirectory");
        }
        return await FromSecretAsync(api, options.EffectiveTlsSecretNamespace, options.TlsSecretName, cancellationToken);
    }

    /// <summary>
    /// Channel options for one agent: mutual TLS whose server certificate must name <paramref name="serverName"/>, or none
    /// (cleartext; and always for unix sockets, which are local and guarded by their permissions).
    /// </summary>
    public GrpcConnectOptions ChannelOptions(string address, string serverName, TimeSpan connectTimeout)
    {
        var unixSocket = address.StartsWith("unix:", StringComparison.Ordinal) || address.StartsWith('/');
        return new GrpcConnectOptions
        {
            ConnectTimeout = connectTimeout,
            Tls = _certificates is null || unixSocket ? null : ClientTlsCredentials.Mutual(_certificates, serverName),
        };
    }

    public void Dispose() => _certificates?.Dispose();
}
