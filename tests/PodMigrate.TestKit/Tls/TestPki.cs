using System.Net;
using PodMigrate.Core.Tls;

namespace PodMigrate.TestKit.Tls;

/// <summary>
/// A throwaway CA with the certificates a test asks for, made by the same code as `podmigrate certs generate`.
/// Names that parse as IP addresses become IP SANs, the rest DNS SANs.
/// </summary>
public sealed class TestPki : IDisposable
{
    private static readonly TimeSpan Validity = TimeSpan.FromDays(1);

    private readonly List<TlsCertificates> _issued = [];

    private TestPki(CertificateAuthority ca) => Ca = ca;

    public CertificateAuthority Ca { get; }

    public string CaPem => Ca.CertificatePem;

    public static TestPki Create(string name = "PodMigrate test CA") => new(CertificateAuthority.Create(name, TimeSpan.FromDays(2)));

    /// <summary>An agent's certificate (server authentication) for these names and addresses.</summary>
    public TlsCertificates Server(params string[] names)
    {
        var ips = names.Select(n => IPAddress.TryParse(n, out var ip) ? ip : null).OfType<IPAddress>().ToList();
        var dns = names.Where(n => !IPAddress.TryParse(n, out _)).ToList();
        return Track(Ca.IssueServer(names[0], dns, ips, Validity), $"server {names[0]}");
    }

    /// <summary>A client's certificate (client authentication).</summary>
    public TlsCertificates Client(string name = "podmigrate-controller")
        => Track(Ca.IssueClient(name, Validity), $"client {name}");

    private TlsCertificates Track(IssuedCertificate issued, string what)
    {
        var certificates = TlsCertificates.FromPem(issued.CertificatePem, issued.KeyPem, CaPem, $"test pki: {what}");
        _issued.Add(certificates);
        return certificates;
    }

    public void Dispose()
    {
        foreach (var certificates in _issued)
        {
            certificates.Dispose();
        }
        Ca.Dispose();
    }
}
