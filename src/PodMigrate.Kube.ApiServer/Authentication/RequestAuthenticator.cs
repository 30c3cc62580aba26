using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace PodMigrate.Kube.ApiServer.Authentication;

/// <summary>
/// kube-apiserver's authenticator chain for the two kinds of credential the local cluster hands out: an X.509 client
/// certificate signed by the client CA (CN = user name, each O = a group; --client-ca-file), then a bearer token from the
/// static token file (--token-auth-file). A request with neither, or with one that does not verify, is not authenticated
/// (401: anonymous requests are off, as with --anonymous-auth=false). Every authenticated user gets system:authenticated.
/// </summary>
internal sealed class RequestAuthenticator
{
    private static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");
    private const string CommonNameOid = "2.5.4.3";
    private const string OrganizationOid = "2.5.4.10";

    private readonly Dictionary<string, UserInfo> _tokens;
    private readonly X509Certificate2Collection _clientAuthorities;
    private readonly TimeProvider _time;

    public RequestAuthenticator(IEnumerable<StaticToken> tokens, X509Certificate2Collection clientAuthorities, TimeProvider time)
    {
        _tokens = tokens.ToDictionary(t => t.Token, t => t.User, StringComparer.Ordinal);
        _clientAuthorities = clientAuthorities;
        _time = time;
    }

    /// <summary>Whether any credential is configured: without one, the server runs with authentication off (unit fixtures).</summary>
    public bool Enabled => _tokens.Count > 0 || _clientAuthorities.Count > 0;

    public bool AcceptsClientCertificates => _clientAuthorities.Count > 0;

    /// <summary>The user, or null (401). A certificate that does not verify fails the request even when a token would pass, as in kube-apiserver.</summary>
    public UserInfo? Authenticate(X509Certificate2? clientCertificate, string? authorizationHeader)
    {
        if (clientCertificate is not null && _clientAuthorities.Count > 0)
        {
            return FromCertificate(clientCertificate)?.Authenticated();
        }
        if (authorizationHeader is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var token = header["Bearer ".Length..].Trim();
            return token.Length > 0 && Lookup(token) is { } user ? user.Authenticated() : null;
        }
        return null;
    }

    /// <summary>
    /// A dictionary lookup by a string hash compares in data-dependent time; the tokens here are few, so every one is
    /// compared in fixed time instead.
    /// </summary>
    private UserInfo? Lookup(string token)
    {
        var presented = Encoding.UTF8.GetBytes(token);
        UserInfo? found = null;
        foreach (var (candidate, user) in _tokens)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, Encoding.UTF8.GetBytes(candidate)))
            {
                found = user;
            }
        }
        return found;
    }

    private UserInfo? FromCertificate(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_clientAuthorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
        chain.ChainPolicy.ApplicationPolicy.Add(ClientAuthentication);
        if (!chain.Build(certificate))
        {
            return null;
        }
        string? name = null;
        var groups = new List<string>();
        foreach (var rdn in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (rdn.HasMultipleElements)
            {
                continue;
            }
            switch (rdn.GetSingleElementType().Value)
            {
                case CommonNameOid:
                    name = rdn.GetSingleElementValue();
                    break;
                case OrganizationOid when rdn.GetSingleElementValue() is { Length: > 0 } group:
                    groups.Add(group);
                    break;
            }
        }
        return string.IsNullOrEmpty(name) ? null : new UserInfo(name, "", groups);
    }
}
