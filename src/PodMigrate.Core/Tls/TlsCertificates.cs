using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tls;

/// <summary>
/// The file names of a TLS directory, the same as the keys of a <c>kubernetes.io/tls</c> Secret that carries its CA:
/// a mounted Secret (or <c>podmigrate certs generate</c>'s output for one party) is such a directory.
/// </summary>
public static class TlsFileNames
{
    /// <summary>This party's certificate (PEM), followed by any intermediates to send to the peer.</summary>
    public const string Certificate = "tls.crt";

    /// <summary>This party's private key (PEM, unencrypted; PKCS#8, SEC1 or PKCS#1).</summary>
    public const string Key = "tls.key";

    /// <summary>The CA bundle (PEM) a peer's certificate must chain to.</summary>
    public const string CaBundle = "ca.crt";
}

/// <summary>
/// One party's TLS material for mutual TLS: its certificate with the private key (and intermediates to send), and the
/// CAs it trusts for the peer, and nothing else: the system's trust store is never consulted.
/// </summary>
public sealed class TlsCertificates : IDisposable
{
    internal static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1", "Server Authentication");

    internal static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2", "Client Authentication");

    private readonly Lazy<SslStreamCertificateContext> _context;

    private TlsCertificates(X509Certificate2 certificate, X509Certificate2Collection intermediates, X509Certificate2Collection trustedCas, string source)
    {
        Certificate = certificate;
        Intermediates = intermediates;
        TrustedCas = trustedCas;
        Source = source;
        // Building the context resolves the chain once; every handshake reuses it.
        _context = new Lazy<SslStreamCertificateContext>(() => SslStreamCertificateContext.Create(Certificate, Intermediates, offline: true));
    }

    /// <summary>The leaf certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Certificates after the leaf in the certificate file: sent along so the peer can build the chain.</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>The CAs a peer's certificate must chain to.</summary>
    public X509Certificate2Collection TrustedCas { get; }

    /// <summary>Where the material came from, for messages: "directory /etc/podmigrate/tls", "secret ns/name".</summary>
    public string Source { get; }

    internal SslStreamCertificateContext CertificateContext => _context.Value;

    /// <summary>tls.crt, tls.key and ca.crt of a directory (a mounted <c>kubernetes.io/tls</c> Secret).</summary>
    public static TlsCertificates LoadDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!Directory.Exists(directory))
        {
            throw PodMigrateException.NotFound($"TLS directory {directory} does not exist (it should hold {TlsFileNames.Certificate}, {TlsFileNames.Key} and {TlsFileNames.CaBundle})");
        }
        return LoadFiles(
            Path.Combine(directory, TlsFileNames.Certificate),
            Path.Combine(directory, TlsFileNames.Key),
            Path.Combine(directory, TlsFileNames.CaBundle),
            $"directory {directory}");
    }

    /// <summary>A certificate file (leaf first, then intermediates), its key file and a CA bundle file, all PEM.</summary>
    public static TlsCertificates LoadFiles(string certificateFile, string keyFile, string caFile, string? source = null)
        => FromPem(ReadPem(certificateFile, "certificate"), ReadPem(keyFile, "private key"), ReadPem(caFile, "CA bundle"),
            source ?? $"files {certificateFile}, {keyFile}, {caFile}");

    /// <summary>The same material as PEM text (e.g. the data of a Secret).</summary>
    public static TlsCertificates FromPem(string certificatePem, string keyPem, string caPem, string source)
    {
        ArgumentNullException.ThrowIfNull(certificatePem);
        ArgumentNullException.ThrowIfNull(keyPem);
        ArgumentNullException.ThrowIfNull(caPem);
        ArgumentException.ThrowIfNullOrEmpty(source);
        var chain = ImportPemBundle(certificatePem, $"{source}: {TlsFileNames.Certificate}");
        X509Certificate2Collection? trusted = null;
        try
        {
            trusted = ImportPemBundle(caPem, $"{source}: {TlsFileNames.CaBundle}");
            X509Certificate2 leaf;
            try
            {
                leaf = X509Certificate2.CreateFromPem(chain[0].ExportCertificatePem(), keyPem);
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw PodMigrateException.InvalidArgument(
                    $"{source}: the private key in {TlsFileNames.Key} is unreadable or does not belong to the certificate in {TlsFileNames.Certificate} ({e.Message})");
            }
            chain[0].Dispose();
            chain.RemoveAt(0);
            return new TlsCertificates(leaf, chain, trusted, source);
        }
        catch
        {
            DisposeAll(chain);
            if (trusted is not null)
            {
                DisposeAll(trusted);
            }
            throw;
        }
    }

    /// <summary>
    /// How a peer's certificate is judged: it must chain to one of <paramref name="trustedCas"/> (and only those) and be
    /// issued for <paramref name="usage"/> (server or client authentication), so an agent's server certificate cannot
    /// pass as a client's. Revocation is not checked: there is no CRL or OCSP responder for a private CA.
    /// </summary>
    internal static X509ChainPolicy PeerChainPolicy(X509Certificate2Collection trustedCas, Oid usage)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(trustedCas);
        policy.ApplicationPolicy.Add(usage);
        return policy;
    }

    private static string ReadPem(string path, string what)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        try
        {
            return File.ReadAllText(path);
        }
        catch (FileNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"TLS {what} {path} does not exist", e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"TLS {what} {path} does not exist", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new PodMigrateException(ErrorKind.FailedPrecondition, $"TLS {what} {path} is not readable by this process", e);
        }
    }

    private static X509Certificate2Collection ImportPemBundle(string pem, string what)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw PodMigrateException.InvalidArgument($"{what}: not a PEM certificate bundle ({e.Message})");
        }
        return collection.Count > 0 ? collection : throw PodMigrateException.InvalidArgument($"{what}: holds no PEM certificate");
    }

    public void Dispose()
    {
        Certificate.Dispose();
        DisposeAll(Intermediates);
        DisposeAll(TrustedCas);
    }

    private static void DisposeAll(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }
}
