using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;

namespace PodMigrate.Kube.Tests.Rbac;

/// <summary>
/// Debian's kubectl against the server with RBAC on, once with the admin's kubeconfig and once with a restricted user's:
/// `kubectl auth can-i` (SelfSubjectAccessReview) and `kubectl auth whoami` (SelfSubjectReview) answer as the server
/// decides, and a forbidden call fails with kube-apiserver's message. Needs /usr/bin/kubectl (scripts/setup.sh).
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Kubectl")]
public sealed class KubectlRbacTests : IDisposable
{
    private const string Kubectl = "/usr/bin/kubectl";

    private readonly string _directory = Directory.CreateTempSubdirectory("podmigrate-kubectl-rbac-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Kubectl_with_the_admin_and_a_restricted_kubeconfig()
    {
        if (!File.Exists(Kubectl))
        {
            throw PodMigrateException.FailedPrecondition($"{Kubectl} is missing: run scripts/setup.sh (it installs Debian's kubectl)");
        }
        await using var api = await RbacFixture.StartAsync(tls: true);
        await api.Server.WriteKubeconfigAsync(Path.Combine(_directory, "admin"), api.Token);
        await File.WriteAllTextAsync(Path.Combine(_directory, "alice"), api.Server.KubeconfigYaml("podmigrate", RbacFixture.AliceToken), api.Token);

        var whoami = await RunAsync("admin", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}");
        whoami.Output.ShouldBe("admin", whoami.Error);
        (await RunAsync("admin", "auth", "can-i", "*", "*", "--all-namespaces")).Output.Trim().ShouldBe("yes");
        var manifest = Path.Combine(_directory, "team.yaml");
        await File.WriteAllTextAsync(manifest, """
            apiVersion: rbac.authorization.k8s.io/v1
            kind: Role
            metadata: {name: pod-editor, namespace: team}
            rules:
            - {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create, delete]}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: devs-edit-pods, namespace: team}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-editor}
            subjects: [{kind: Group, name: devs}]
            """, api.Token);
        (await RunAsync("admin", "apply", "-f", manifest)).Output.ShouldContain("rolebinding.rbac.authorization.k8s.io/devs-edit-pods created");

        (await RunAsync("alice", "auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}")).Output.ShouldBe("[\"devs\",\"system:authenticated\"]");
        (await RunAsync("alice", "auth", "can-i", "list", "pods", "-n", "team")).Output.Trim().ShouldBe("yes");
        var binding = await RunAsync("alice", "auth", "can-i", "create", "pods", "--subresource=binding", "-n", "team");
        (binding.Output.Trim(), binding.ExitCode).ShouldBe(("no", 1));
        var elsewhere = await RunAsync("alice", "auth", "can-i", "list", "pods", "-n", "default");
        (elsewhere.Output.Trim(), elsewhere.ExitCode).ShouldBe(("no", 1));
        (await RunAsync("alice", "get", "pods", "-n", "team")).Error.ShouldContain("No resources found in team namespace.");
        var forbidden = await RunAsync("alice", "get", "pods", "-n", "default");
        forbidden.ExitCode.ShouldNotBe(0);
        forbidden.Error.ShouldContain("pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"");
        var nodes = await RunAsync("alice", "get", "nodes");
        nodes.ExitCode.ShouldNotBe(0);
        nodes.Error.ShouldContain("nodes is forbidden: User \"alice\" cannot list resource \"nodes\" in API group \"\" at the cluster scope");
    }

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(string kubeconfig, params string[] args)
    {
        var spec = new ProcessSpec(Kubectl, ["--kubeconfig", Path.Combine(_directory, kubeconfig), "--cache-dir", Path.Combine(_directory, "cache-" + kubeconfig), "--request-timeout", "20s", .. args])
        {
            Environment = new Dictionary<string, string?> { ["HOME"] = _directory, ["KUBECONFIG"] = null },
            Timeout = TimeSpan.FromSeconds(30),
        };
        using var timeout = new CancellationTokenSource(ApiServerFixture.TestTimeout);
        var result = await ProcessRunner.RunAsync(spec, timeout.Token);
        return (result.ExitCode, result.StandardOutput, result.StandardError);
    }
}
