using System.Net;
using PodMigrate.Kube.ApiServer.Authentication;

namespace PodMigrate.Kube.ApiServer;

public sealed class ApiServerOptions
{
    /// <summary>TCP port; 0 picks a free one (see <see cref="KubeApiServer.BaseAddress"/>).</summary>
    public int Port { get; set; }

    /// <summary>Loopback by default.</summary>
    public IPAddress BindAddress { get; set; } = IPAddress.Loopback;

    /// <summary>When set, every request must carry "Authorization: Bearer &lt;token&gt;" (401 otherwise): the token of a user "admin" in system:masters.</summary>
    public string? BearerToken { get; set; }

    /// <summary>
    /// Bearer tokens and the users they stand for (kube-apiserver's --token-auth-file, see <see cref="StaticToken.ParseFile"/>).
    /// With none of these, no <see cref="BearerToken"/> and no <see cref="ClientCertificateAuthorityPem"/>, authentication is off.
    /// </summary>
    public IReadOnlyList<StaticToken> Tokens { get; set; } = [];

    /// <summary>
    /// PEM bundle of the CAs whose client certificates authenticate a user (--client-ca-file): CN is the user name, each O a
    /// group. Needs <see cref="UseTls"/>.
    /// </summary>
    public string? ClientCertificateAuthorityPem { get; set; }

    /// <summary>
    /// Authorize every request with the stored Roles, ClusterRoles and bindings (--authorization-mode=RBAC), after installing
    /// kube-apiserver's default roles; off (unit fixtures), every authenticated request is allowed.
    /// </summary>
    public bool AuthorizeWithRbac { get; set; }

    /// <summary>Serve HTTPS with a self-signed certificate generated at start (its PEM goes into the kubeconfig as the CA).</summary>
    public bool UseTls { get; set; }

    /// <summary>How many past changes a watch can resume from; older resourceVersions get 410 Gone.</summary>
    public int WatchHistory { get; set; } = 10_000;

    /// <summary>Namespaces that exist from the start.</summary>
    public IReadOnlyList<string> InitialNamespaces { get; set; } = ["default", "kube-system", "kube-public", "kube-node-lease"];

    /// <summary>
    /// How long a deleted namespace stays Terminating before its content and then itself are removed (the namespace
    /// controller's work in a real cluster, which takes about as long).
    /// </summary>
    public TimeSpan NamespaceCleanupDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
