using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;

namespace PodMigrate.Core.Tls;

/// <summary>
/// A private CA for PodMigrate's agents and their clients (ECDSA P-256 throughout), made with .NET's own
/// <see cref="CertificateRequest"/> so nothing depends on openssl: `podmigrate certs generate` and the tests use it.
/// </summary>
public sealed class CertificateAuthority : IDisposable
{
    /// <summary>Issued certificates start this much in the past, so a peer whose clock is a little behind accepts them.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    private readonly ECDsa _key;
    private readonly TimeProvider _time;

    private CertificateAuthority(X509Certificate2 certificate, ECDsa key, TimeProvider time)
    {
        Certificate = certificate;
        _key = key;
        _time = time;
    }

    /// <summary>The CA certificate (without its key).</summary>
    public X509Certificate2 Certificate { get; }

    public string CertificatePem => Certificate.ExportCertificatePem();

    public string KeyPem => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>A new self-signed CA that may sign end-entity certificates only (path length 0).</summary>
    public static CertificateAuthority Create(string commonName, TimeSpan validity, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(commonName);
        time ??= TimeProvider.System;
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var request = new CertificateRequest(Subject(commonName), key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
            var now = time.GetUtcNow();
            using var selfSigned = request.CreateSelfSigned(now - ClockSkew, now + validity);
            // Keep the certificate apart from the key: the key is ours to sign with, the certificate is what peers see.
            return new CertificateAuthority(X509CertificateLoader.LoadCertificate(selfSigned.RawData), key, time);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>An existing CA from its certificate and private key (PEM), to issue more certificates under it.</summary>
    public static CertificateAuthority FromPem(string certificatePem, string keyPem, string source, TimeProvider? time = null)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certificatePem);
        }
        catch (CryptographicException e)
        {
            throw PodMigrateException.InvalidArgument($"{source}: the CA certificate is not a PEM certificate ({e.Message})");
        }
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(keyPem);
            using var publicKey = certificate.GetECDsaPublicKey();
            if (publicKey is null || !publicKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(key.ExportSubjectPublicKeyInfo()))
            {
                throw PodMigrateException.InvalidArgument($"{source}: the CA key does not belong to the CA certificate");
            }
            if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
            {
                throw PodMigrateException.InvalidArgument($"{source}: the certificate is not a CA (basic constraints)");
            }
            return new CertificateAuthority(certificate, key, time ?? TimeProvider.System);
        }
        catch (Exception e) when (e is PodMigrateException or CryptographicException or ArgumentException)
        {
            key.Dispose();
            certificate.Dispose();
            throw e as PodMigrateException ?? PodMigrateException.InvalidArgument($"{source}: the CA key is not a PEM ECDSA private key ({e.Message})");
        }
    }

    /// <summary>
    /// An agent's certificate: server authentication for the given DNS names and IP addresses, and code signing, the
    /// usage a checkpoint's signer must have (<see cref="CheckpointSignatures"/>): agents sign the checkpoints they make.
    /// </summary>
    public IssuedCertificate IssueServer(string commonName, IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(dnsNames);
        ArgumentNullException.ThrowIfNull(ipAddresses);
        var names = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var dns in dnsNames.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            names.AddDnsName(dns);
            any = true;
        }
        foreach (var ip in ipAddresses.Distinct())
        {
            names.AddIpAddress(ip);
            any = true;
        }
        if (!any)
        {
            throw PodMigrateException.InvalidArgument($"a server certificate for {commonName} needs at least one DNS name or IP address");
        }
        return Issue(commonName, [TlsCertificates.ServerAuthentication, CheckpointSignatures.SignerUsage], names.Build(), validity);
    }

    /// <summary>
    /// A TLS server certificate only (server authentication, no code signing): for endpoints such as the controller's
    /// admission webhook, whose key must never be able to sign a checkpoint that agents would restore.
    /// </summary>
    public IssuedCertificate IssueTlsServer(string commonName, IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(dnsNames);
        ArgumentNullException.ThrowIfNull(ipAddresses);
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            names.AddDnsName(dns);
        }
        foreach (var ip in ipAddresses.Distinct())
        {
            names.AddIpAddress(ip);
        }
        return Issue(commonName, [TlsCertificates.ServerAuthentication], names.Build(), validity);
    }

    /// <summary>A client's certificate (the controller's, the CLI's): client authentication, its name as the only SAN.</summary>
    public IssuedCertificate IssueClient(string commonName, TimeSpan validity)
    {
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(commonName);
        return Issue(commonName, [TlsCertificates.ClientAuthentication], names.Build(), validity);
    }

    private IssuedCertificate Issue(string commonName, Oid[] usages, X509Extension subjectAlternativeNames, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(commonName);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(Subject(commonName), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([.. usages], critical: false));
        request.CertificateExtensions.Add(subjectAlternativeNames);
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var now = _time.GetUtcNow();
        var notAfter = now + validity;
        if (notAfter > Certificate.NotAfter.ToUniversalTime())
        {
            // A certificate cannot outlive its issuer.
            notAfter = Certificate.NotAfter.ToUniversalTime();
        }
        var generator = X509SignatureGenerator.CreateForECDsa(_key);
        using var issued = request.Create(Certificate.SubjectName, generator, now - ClockSkew, notAfter, SerialNumber());
        return new IssuedCertificate(issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    private static X500DistinguishedName Subject(string commonName)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddOrganizationName("PodMigrate");
        builder.AddCommonName(commonName);
        return builder.Build();
    }

    private static byte[] SerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        // A positive integer (RFC 5280 4.1.2.2).
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        return serial;
    }

    public void Dispose()
    {
        _key.Dispose();
        Certificate.Dispose();
    }
}

/// <summary>A certificate and its private key, PEM.</summary>
public sealed record IssuedCertificate(string CertificatePem, string KeyPem)
{
    /// <summary>
    /// Writes a TLS directory (<see cref="TlsFileNames"/>): the certificate, its key (mode 0600) and the CA bundle, each
    /// file atomically; the directory is created mode 0700 if missing.
    /// </summary>
    public async Task WriteDirectoryAsync(string directory, string caBundlePem, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        DurableFileSystem.CreatePrivateDirectory(directory);
        await WritePemAsync(Path.Combine(directory, TlsFileNames.Key), KeyPem, secret: true, cancellationToken);
        await WritePemAsync(Path.Combine(directory, TlsFileNames.Certificate), CertificatePem, secret: false, cancellationToken);
        await WritePemAsync(Path.Combine(directory, TlsFileNames.CaBundle), caBundlePem, secret: false, cancellationToken);
    }

    /// <summary>A PEM file: keys stay 0600 (how the atomic write creates them); certificates are public, 0644.</summary>
    public static async Task WritePemAsync(string path, string pem, bool secret, CancellationToken cancellationToken)
    {
        await DurableFileSystem.WriteFileAtomicallyAsync(path, Encoding.ASCII.GetBytes(pem.EndsWith('\n') ? pem : pem + "\n"), cancellationToken);
        if (!secret)
        {
            DurableFileSystem.SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
    }
}
