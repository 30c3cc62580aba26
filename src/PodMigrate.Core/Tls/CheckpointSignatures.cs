using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tls;

/// <summary>Who signed a checkpoint: the subject and SHA-1 thumbprint of the agent certificate whose key signed it.</summary>
public sealed record CheckpointSigner(string Subject, string Thumbprint)
{
    public override string ToString() => $"{Subject} ({Thumbprint})";
}

/// <summary>
/// Signing and verifying checkpoint manifests with agents' certificates: the agent that publishes a checkpoint signs the
/// exact bytes of its manifest (which hold the archive's sha256 and every file's) with its own certificate's key, and
/// stores the signature with its certificate chain beside the manifest (<see cref="CheckpointLayout.SignatureFile"/>).
/// A reader accepts the manifest only when the signature matches those bytes and the signer's certificate
/// <list type="bullet">
/// <item>chains to one of the trusted CAs (the cluster CA; during a CA rotation the old one too), and to nothing else,</item>
/// <item>is an agent's: an end-entity certificate (not a CA) with the digital-signature key usage and the code-signing
/// extended key usage (<see cref="SignerUsage"/>), which `podmigrate certs generate` gives agents and never clients,</item>
/// <item>and was valid when the manifest says the checkpoint was made (not in the future), so a rotated or since-expired
/// agent certificate leaves the checkpoints it signed valid while its CA is trusted.</item>
/// </list>
/// Everything else is <see cref="ErrorKind.PermissionDenied"/>. Revocation is not checked (a private CA has no CRL or
/// OCSP responder): a leaked agent key is answered by rotating the CA.
/// </summary>
public sealed class CheckpointSignatures
{
    /// <summary>id-kp-codeSigning: a checkpoint is process state that a node will run. cert-manager can issue it ("code signing").</summary>
    public static readonly Oid SignerUsage = new("1.3.6.1.5.5.7.3.3", "Code Signing");

    public const string EcdsaSha256 = "ecdsa-sha256";

    public const string RsaPssSha256 = "rsa-pss-sha256";

    public const int CurrentFormatVersion = 1;

    /// <summary>Larger signature files are refused unread: a chain of a few certificates is a few KiB.</summary>
    public const int MaxSignatureFileBytes = 256 << 10;

    /// <summary>How far a checkpoint's creation time may be ahead of this clock.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>Prefixed to the manifest before hashing: this key's signature over anything else never reads as a manifest's.</summary>
    private static readonly byte[] Context = "podmigrate.io/checkpoint-manifest/v1\n"u8.ToArray();

    private readonly Func<TlsCertificates>? _signing;
    private readonly Func<X509Certificate2Collection> _trusted;
    private readonly TimeProvider _time;

    /// <param name="signingMaterial">This agent's certificate with its key (and intermediates); null: it cannot sign.</param>
    /// <param name="trustedCas">The CAs a signer's certificate must chain to.</param>
    /// <param name="allowUnsigned">Accept checkpoints without a signature (development only; a wrong signature is still refused).</param>
    public CheckpointSignatures(Func<TlsCertificates>? signingMaterial, Func<X509Certificate2Collection> trustedCas, bool allowUnsigned, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(trustedCas);
        ArgumentNullException.ThrowIfNull(time);
        _signing = signingMaterial;
        _trusted = trustedCas;
        AllowUnsigned = allowUnsigned;
        _time = time;
    }

    /// <summary>
    /// The material of a set of files (certificate, key, trusted CAs) that are re-read when they change, so a rotated
    /// certificate signs from then on and a CA bundle that gained the new CA is trusted at once.
    /// </summary>
    public static CheckpointSignatures FromFiles(TlsCertificateFiles files, bool allowUnsigned, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(files);
        return new CheckpointSignatures(() => files.Current, () => files.Current.TrustedCas, allowUnsigned, time);
    }

    /// <summary>No key and no trusted CA: publishes unsigned checkpoints and accepts only unsigned ones. Development only.</summary>
    public static CheckpointSignatures UnsignedForDevelopment(TimeProvider time) => new(null, () => [], allowUnsigned: true, time);

    public bool AllowUnsigned { get; }

    public bool CanSign => _signing is not null;

    /// <summary>The signature file for these manifest bytes, or null when there is no key to sign with (then <see cref="AllowUnsigned"/> holds).</summary>
    public byte[]? Sign(ReadOnlySpan<byte> manifest)
    {
        if (_signing is null)
        {
            return null;
        }

        var material = _signing();
        var hash = Digest(manifest);
        string algorithm;
        byte[] signature;
        using (var ecdsa = material.Certificate.GetECDsaPrivateKey())
        using (var rsa = ecdsa is null ? material.Certificate.GetRSAPrivateKey() : null)
        {
            (algorithm, signature) = (ecdsa, rsa) switch
            {
                ({ } key, _) => (EcdsaSha256, key.SignHash(hash, DSASignatureFormat.Rfc3279DerSequence)),
                (_, { } key) => (RsaPssSha256, key.SignHash(hash, HashAlgorithmName.SHA256, RSASignaturePadding.Pss)),
                _ => throw PodMigrateException.FailedPrecondition(
                    $"{material.Source}: the certificate {material.Certificate.Subject} has neither an ECDSA nor an RSA private key to sign checkpoints with"),
            };
        }

        var file = new CheckpointSignatureFile
        {
            FormatVersion = CurrentFormatVersion,
            Algorithm = algorithm,
            Certificates = [Convert.ToBase64String(material.Certificate.RawData), .. material.Intermediates.Select(c => Convert.ToBase64String(c.RawData))],
            Signature = Convert.ToBase64String(signature),
        };
        return JsonSerializer.SerializeToUtf8Bytes(file, SignatureJsonContext.Default.CheckpointSignatureFile);
    }

    /// <summary>
    /// Checks this agent's own certificate as a reader will: a certificate that readers would refuse fails here, at
    /// start-up (FailedPrecondition), not as refused checkpoints on other nodes later.
    /// </summary>
    public CheckpointSigner CheckOwnCertificate()
    {
        if (_signing is null)
        {
            throw PodMigrateException.FailedPrecondition("no certificate and key to sign checkpoints with are configured");
        }

        var material = _signing();
        try
        {
            CheckSigner("(this agent's own)", material.Certificate, material.Intermediates, _time.GetUtcNow());
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.PermissionDenied)
        {
            throw PodMigrateException.FailedPrecondition(
                $"{material.Source}: checkpoints signed with this certificate would be refused: {e.Message}. " +
                "Certificates from `podmigrate certs generate` before checkpoint signing lack the code-signing usage: generate them again");
        }

        return new CheckpointSigner(material.Certificate.Subject, material.Certificate.Thumbprint);
    }

    /// <summary>
    /// Verifies a manifest's signature: null when it is unsigned and unsigned checkpoints are allowed, else who signed it.
    /// </summary>
    /// <param name="subject">The checkpoint, for messages.</param>
    /// <param name="manifest">The manifest's bytes exactly as stored.</param>
    /// <param name="createdAt">
    /// When the manifest says the checkpoint was made, read only once the signature matches (so from signed bytes): the
    /// signer's certificate must have been valid then.
    /// </param>
    /// <param name="signatureFile">The signature file's content, or null when there is none.</param>
    /// <exception cref="PodMigrateException">PermissionDenied: unsigned, altered, or signed by anyone but a trusted agent.</exception>
    public CheckpointSigner? Verify(string subject, ReadOnlySpan<byte> manifest, Func<DateTimeOffset> createdAt, byte[]? signatureFile)
    {
        ArgumentNullException.ThrowIfNull(createdAt);
        if (signatureFile is null)
        {
            return AllowUnsigned
                ? null
                : throw Denied(subject, $"it is not signed (no {CheckpointLayout.SignatureFile} beside its manifest). Only checkpoints signed by a PodMigrate agent whose certificate chains to this node's trusted CAs are restored");
        }

        var file = Parse(subject, signatureFile);
        var certificates = new X509Certificate2Collection();
        try
        {
            foreach (var encoded in file.Certificates)
            {
                certificates.Add(X509CertificateLoader.LoadCertificate(Convert.FromBase64String(encoded)));
            }
        }
        catch (Exception e) when (e is FormatException or CryptographicException)
        {
            DisposeAll(certificates);
            throw Denied(subject, $"the certificates in its {CheckpointLayout.SignatureFile} are unreadable ({e.Message})");
        }

        try
        {
            var leaf = certificates.Count > 0 ? certificates[0] : throw Denied(subject, $"its {CheckpointLayout.SignatureFile} holds no certificate");
            if (!SignatureMatches(file, leaf, Digest(manifest)))
            {
                throw Denied(subject, $"the signature in {CheckpointLayout.SignatureFile} does not match {CheckpointLayout.ManifestFile}: the manifest or its signature was altered after {leaf.Subject} signed it");
            }

            var signedAt = createdAt();
            if (signedAt > _time.GetUtcNow() + ClockSkew)
            {
                throw Denied(subject, $"its manifest says it was made at {signedAt:u}, in the future");
            }

            var intermediates = new X509Certificate2Collection();
            for (var i = 1; i < certificates.Count; i++)
            {
                intermediates.Add(certificates[i]);
            }

            CheckSigner(subject, leaf, intermediates, signedAt);
            return new CheckpointSigner(leaf.Subject, leaf.Thumbprint);
        }
        finally
        {
            DisposeAll(certificates);
        }
    }

    private void CheckSigner(string subject, X509Certificate2 leaf, X509Certificate2Collection intermediates, DateTimeOffset at)
    {
        var who = $"its signer {leaf.Subject}";
        if (leaf.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is { CertificateAuthority: true })
        {
            throw Denied(subject, $"{who} is a CA certificate, not an agent's");
        }

        if (leaf.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault() is { } keyUsage && !keyUsage.KeyUsages.HasFlag(X509KeyUsageFlags.DigitalSignature))
        {
            throw Denied(subject, $"{who} may not make digital signatures (key usage {keyUsage.KeyUsages})");
        }

        // An end-entity certificate without the extension would pass a chain's usage check (no EKU = any use): require it.
        var usages = leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault()?.EnhancedKeyUsages;
        if (usages is null || !usages.Cast<Oid>().Any(o => o.Value == SignerUsage.Value))
        {
            throw Denied(subject, $"{who} is not an agent certificate: it lacks the {SignerUsage.FriendlyName} extended key usage ({SignerUsage.Value}) that agents sign checkpoints with");
        }

        var trusted = _trusted();
        if (trusted.Count == 0)
        {
            throw Denied(subject, "this node trusts no CA for checkpoint signatures");
        }

        var policy = TlsCertificates.PeerChainPolicy(trusted, SignerUsage);
        policy.ExtraStore.AddRange(intermediates);
        policy.VerificationTime = at.UtcDateTime;
        policy.VerificationTimeIgnored = false;
        using var chain = new X509Chain { ChainPolicy = policy };
        if (!chain.Build(leaf))
        {
            var reasons = chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct().ToList();
            throw Denied(subject, $"{who} (issued by {leaf.Issuer}) is not trusted for checkpoint signing at {at:u}: {(reasons.Count > 0 ? string.Join("; ", reasons) : "its chain does not build to a trusted CA")}");
        }
    }

    private static bool SignatureMatches(CheckpointSignatureFile file, X509Certificate2 leaf, byte[] hash)
    {
        byte[] signature;
        try
        {
            signature = Convert.FromBase64String(file.Signature);
        }
        catch (FormatException)
        {
            return false;
        }

        switch (file.Algorithm)
        {
            case EcdsaSha256:
                using (var key = leaf.GetECDsaPublicKey())
                {
                    return key is not null && key.VerifyHash(hash, signature, DSASignatureFormat.Rfc3279DerSequence);
                }
            case RsaPssSha256:
                using (var key = leaf.GetRSAPublicKey())
                {
                    return key is not null && key.VerifyHash(hash, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pss);
                }
            default:
                return false;
        }
    }

    private static CheckpointSignatureFile Parse(string subject, byte[] content)
    {
        if (content.Length > MaxSignatureFileBytes)
        {
            throw Denied(subject, $"its {CheckpointLayout.SignatureFile} is {content.Length} bytes, more than a signature may be ({MaxSignatureFileBytes})");
        }

        CheckpointSignatureFile? file;
        try
        {
            file = JsonSerializer.Deserialize(content, SignatureJsonContext.Default.CheckpointSignatureFile);
        }
        catch (JsonException e)
        {
            throw Denied(subject, $"its {CheckpointLayout.SignatureFile} is not a signature file ({e.Message})");
        }

        if (file is null || file.FormatVersion != CurrentFormatVersion)
        {
            throw Denied(subject, $"its {CheckpointLayout.SignatureFile} has format version {file?.FormatVersion}, this build reads {CurrentFormatVersion}");
        }

        if (file.Algorithm is not (EcdsaSha256 or RsaPssSha256))
        {
            throw Denied(subject, $"its {CheckpointLayout.SignatureFile} uses the algorithm \"{file.Algorithm}\", not {EcdsaSha256} or {RsaPssSha256}");
        }

        return file;
    }

    private static byte[] Digest(ReadOnlySpan<byte> manifest)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(Context);
        hash.AppendData(manifest);
        return hash.GetHashAndReset();
    }

    private static PodMigrateException Denied(string subject, string why)
        => PodMigrateException.PermissionDenied($"checkpoint {subject} refused: {why}");

    private static void DisposeAll(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }
}

/// <summary>podmigrate.manifest.sig: the algorithm, the signer's certificate chain (base64 DER, leaf first) and the signature (base64).</summary>
internal sealed record CheckpointSignatureFile
{
    public int FormatVersion { get; init; }

    public string Algorithm { get; init; } = "";

    public IReadOnlyList<string> Certificates { get; init; } = [];

    public string Signature { get; init; } = "";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(CheckpointSignatureFile))]
internal sealed partial class SignatureJsonContext : JsonSerializerContext;
