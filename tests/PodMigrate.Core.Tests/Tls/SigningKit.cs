using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Tests.Tls;

/// <summary>
/// Signing material for unit tests. The CAs are made "in 2020" and valid for 30 years, so checkpoints made at any test
/// clock (the store tests run theirs in 2026-11) are inside their signers' validity.
/// </summary>
internal static class SigningKit
{
    public static readonly DateTimeOffset Epoch = new(2020, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly TimeSpan Validity = TimeSpan.FromDays(365 * 30);

    private static readonly Lazy<CertificateAuthority> LazyCa = new(() => NewCa("PodMigrate unit-test signing CA"));

    /// <summary>The CA every <see cref="StoreTestKit"/> store signs under and trusts.</summary>
    public static CertificateAuthority Ca => LazyCa.Value;

    public static CertificateAuthority NewCa(string name, DateTimeOffset? at = null, TimeSpan? validity = null)
        => CertificateAuthority.Create(name, validity ?? Validity, new FakeTimeProvider(at ?? Epoch));

    /// <summary>An agent's material (server + code-signing certificate) under <paramref name="ca"/>, trusting that CA.</summary>
    public static TlsCertificates AgentMaterial(string node, CertificateAuthority? ca = null, TimeSpan? validity = null)
    {
        ca ??= Ca;
        var issued = ca.IssueServer(node, [node, "localhost"], [], validity ?? Validity);
        return TlsCertificates.FromPem(issued.CertificatePem, issued.KeyPem, ca.CertificatePem, $"unit test agent {node}");
    }

    /// <summary>An agent's signatures: signs with its certificate, trusts its CA.</summary>
    public static CheckpointSignatures Agent(string node, TimeProvider time, CertificateAuthority? ca = null, bool allowUnsigned = false)
    {
        var material = AgentMaterial(node, ca);
        return new CheckpointSignatures(() => material, () => material.TrustedCas, allowUnsigned, time);
    }

    /// <summary>Signs with <paramref name="signer"/>, trusts the CAs of <paramref name="trusted"/>.</summary>
    public static CheckpointSignatures Mixed(TlsCertificates signer, TlsCertificates trusted, TimeProvider time)
        => new(() => signer, () => trusted.TrustedCas, allowUnsigned: false, time);
}
