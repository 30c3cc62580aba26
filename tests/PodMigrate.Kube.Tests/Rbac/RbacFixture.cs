using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.ApiServer.Authentication;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests.Rbac;

/// <summary>What the RBAC tests share: identities with tokens, RBAC objects from YAML, and the Status of a refused call.</summary>
internal static class RbacFixture
{
    public const string AdminToken = "admin-token";
    public const string AliceToken = "alice-token";
    public const string ControllerToken = "controller-token";
    public const string NodeToken = "node-a-token";

    public static readonly StaticToken[] Tokens =
    [
        new(AdminToken, UserInfo.Admin()),
        new(AliceToken, new UserInfo("alice", "1001", ["devs"])),
        new(ControllerToken, UserInfo.ServiceAccount("podmigrate-system", "podmigrate-controller")),
        new(NodeToken, UserInfo.Node("node-a")),
    ];

    /// <summary>A server with the tokens above and RBAC on; its <see cref="ApiServerFixture.Client"/> is the admin.</summary>
    public static Task<ApiServerFixture> StartAsync(bool tls = false, string? clientCaPem = null) => ApiServerFixture.StartAsync(new ApiServerOptions
    {
        Tokens = Tokens,
        AuthorizeWithRbac = true,
        UseTls = tls,
        ClientCertificateAuthorityPem = clientCaPem,
        InitialNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease", "team", "podmigrate-system"],
    });

    public static KubernetesApiClient ClientFor(this ApiServerFixture api, string token) => new(api.Server.ClientConfigFor(token));

    public static ResourceKind<CustomResource> KindOf(string kind) => kind switch
    {
        "ClusterRole" => KubeResources.Custom("rbac.authorization.k8s.io", "v1", "clusterroles", kind, namespaced: false),
        "ClusterRoleBinding" => KubeResources.Custom("rbac.authorization.k8s.io", "v1", "clusterrolebindings", kind, namespaced: false),
        "Role" => KubeResources.Custom("rbac.authorization.k8s.io", "v1", "roles", kind),
        "RoleBinding" => KubeResources.Custom("rbac.authorization.k8s.io", "v1", "rolebindings", kind),
        "ServiceAccount" => KubeResources.Custom("", "v1", "serviceaccounts", kind),
        "Namespace" => KubeResources.Custom("", "v1", "namespaces", kind, namespaced: false),
        _ => throw new ArgumentException($"no kind {kind} in these tests", nameof(kind)),
    };

    /// <summary>Creates every object of <paramref name="yaml"/> (the admin's client), as `kubectl create -f` would.</summary>
    public static async Task ApplyAsync(this ApiServerFixture api, string yaml, string source = "test")
    {
        foreach (var json in KubeYaml.ToJsonDocuments(yaml, source))
        {
            var obj = KubeJson.Deserialize(json, KubeClientJsonContext.Default.CustomResource, source);
            var kind = KindOf(obj.Kind!);
            await api.Client.CreateAsync(kind, kind.Namespaced ? obj.Metadata.Namespace ?? "default" : null, obj, api.Token);
        }
    }

    /// <summary>The Status of a call the server refused (the test fails when it succeeds).</summary>
    public static async Task<KubeStatusException> RefusedAsync(Func<Task> call)
    {
        var e = await Should.ThrowAsync<PodMigrateException>(call);
        return e.KubeStatus() ?? throw new ShouldAssertException($"not an API server refusal: {e}");
    }

    /// <summary>SelfSubjectReview: who the server takes the caller for.</summary>
    public static async Task<(string Name, string Groups)> WhoAmIAsync(KubernetesApiClient client, CancellationToken cancellationToken)
    {
        var review = await client.CreateAsync(KubeResources.Custom("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced: false),
            null, new CustomResource { ApiVersion = "authentication.k8s.io/v1", Kind = "SelfSubjectReview" }, cancellationToken);
        var user = review.Status!.Value.GetProperty("userInfo");
        return (user.GetProperty("username").GetString()!, string.Join(',', user.GetProperty("groups").EnumerateArray().Select(g => g.GetString()!)));
    }

    /// <summary>SelfSubjectAccessReview: whether the caller may do it.</summary>
    public static async Task<bool> CanIAsync(KubernetesApiClient client, string verb, string resource, string? ns, CancellationToken cancellationToken,
        string group = "", string subresource = "", string name = "")
    {
        var attributes = new JsonObject { ["verb"] = verb, ["group"] = group, ["resource"] = resource, ["subresource"] = subresource, ["namespace"] = ns ?? "", ["name"] = name };
        using var document = JsonDocument.Parse(new JsonObject { ["resourceAttributes"] = attributes }.ToJsonString());
        var spec = document.RootElement.Clone();
        var review = await client.CreateAsync(KubeResources.Custom("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", namespaced: false),
            null, new CustomResource { ApiVersion = "authorization.k8s.io/v1", Kind = "SelfSubjectAccessReview", Spec = spec }, cancellationToken);
        return review.Status!.Value.GetProperty("allowed").GetBoolean();
    }

    /// <summary>A client certificate as kube-apiserver reads one: CN = user, one O per group, signed by <paramref name="ca"/>.</summary>
    public static (string CertificatePem, string KeyPem) IssueClientCertificate(X509Certificate2 ca, string user, params string[] groups)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = string.Join(", ", new[] { $"CN={user}" }.Concat(groups.Select(g => $"O={g}")));
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(ca, now.AddMinutes(-5), now.AddHours(1), RandomNumberGenerator.GetBytes(16));
        return (issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>A CA certificate with its key (for <see cref="IssueClientCertificate"/>).</summary>
    public static X509Certificate2 CreateCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.DigitalSignature, true));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }
}
