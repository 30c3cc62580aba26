namespace PodMigrate.Kube.ApiServer.Authentication;

/// <summary>Who made a request, as kube-apiserver's authenticators describe a user: name, uid, groups.</summary>
public sealed record UserInfo(string Name, string Uid, IReadOnlyList<string> Groups)
{
    /// <summary>Bypasses authorization (kube-apiserver's privileged group; also bound to cluster-admin).</summary>
    public const string MastersGroup = "system:masters";

    /// <summary>Added to every authenticated user.</summary>
    public const string AuthenticatedGroup = "system:authenticated";

    public const string NodesGroup = "system:nodes";

    public const string ServiceAccountPrefix = "system:serviceaccount:";

    /// <summary>"system:serviceaccount:&lt;ns&gt;:&lt;name&gt;" in groups system:serviceaccounts and system:serviceaccounts:&lt;ns&gt;, as the token authenticator names them.</summary>
    public static UserInfo ServiceAccount(string ns, string name, string? uid = null)
        => new($"{ServiceAccountPrefix}{ns}:{name}", uid ?? "", ["system:serviceaccounts", $"system:serviceaccounts:{ns}"]);

    /// <summary>"system:node:&lt;node&gt;" in group system:nodes: how a kubelet is known.</summary>
    public static UserInfo Node(string node) => new($"system:node:{node}", "", [NodesGroup]);

    public static UserInfo Admin(string name = "admin") => new(name, "", [MastersGroup]);

    /// <summary>The user with <see cref="AuthenticatedGroup"/> added (once), as the authenticator chain does.</summary>
    internal UserInfo Authenticated()
        => Groups.Contains(AuthenticatedGroup, StringComparer.Ordinal) ? this : this with { Groups = [.. Groups, AuthenticatedGroup] };
}
