using System.Text.Json;
using k8s;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// Debian's kubectl against the in-process API server, as a subprocess, with kubectl's default validation (the server's
/// OpenAPI documents let it run: see OpenApi in the server). Needs /usr/bin/kubectl (scripts/setup.sh installs it):
/// without it these tests fail, saying so.
/// </summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Kubectl")]
public sealed class KubectlTests : IDisposable
{
    private const string Kubectl = "/usr/bin/kubectl";

    private delegate Task<string> KubectlCall(params string[] args);

    private readonly string _directory = Directory.CreateTempSubdirectory("podmigrate-kubectl-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Kubectl_applies_gets_describes_and_deletes_a_pod()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);
        var manifest = Write("pod.yaml", """
            apiVersion: v1
            kind: Pod
            metadata:
              name: counter
              labels: {app: counter}
            spec:
              priority: 7
              containers:
              - name: counter
                image: localhost:5000/podmigrate/counter:1
            """);

        (await kubectl("apply", "-f", manifest)).ShouldContain("pod/counter created");
        var pod = await api.Client.GetAsync(KubeResources.V1Pods, "default", "counter", api.Token);
        pod.Spec.Priority.ShouldBe(7);
        pod.Metadata.Annotations!.ShouldContainKey("kubectl.kubernetes.io/last-applied-configuration");

        // A node reports the pod running: kubectl shows what the status subresource says.
        await api.Client.PatchAsync(KubeResources.V1Pods, "default", "counter", PatchType.MergePatch,
            """{"status":{"phase":"Running","podIP":"10.88.1.7","containerStatuses":[{"name":"counter","ready":true,"restartCount":2,"image":"x","imageID":""}]}}""",
            status: true, api.Token);
        var wide = await kubectl("get", "pods", "-A", "-o", "wide");
        var row = wide.Split('\n').Single(l => l.StartsWith("default", StringComparison.Ordinal));
        row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..5].ShouldBe(["default", "counter", "1/1", "Running", "2"]);
        row.ShouldContain("10.88.1.7");

        // Re-applying a changed manifest goes through kubectl's strategic merge patch.
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("{app: counter}", "{app: counter, tier: demo}", StringComparison.Ordinal));
        (await kubectl("apply", "-f", manifest)).ShouldContain("pod/counter configured");
        (await api.Client.GetAsync(KubeResources.V1Pods, "default", "counter", api.Token)).Metadata.Labels!["tier"].ShouldBe("demo");

        await api.Client.Kubernetes.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = "counter." },
            InvolvedObject = new V1ObjectReference { Kind = "Pod", Name = "counter", NamespaceProperty = "default", Uid = pod.Metadata.Uid },
            Reason = "Checkpointed",
            Message = "checkpoint c1 written",
            Type = "Normal",
        }, "default", cancellationToken: api.Token);
        var describe = await kubectl("describe", "pod", "counter");
        describe.ShouldContain("Status:       Running");
        describe.ShouldContain("checkpoint c1 written");

        (await kubectl("delete", "pod", "counter")).ShouldContain("pod \"counter\" deleted");
        (await api.Client.ListAsync(KubeResources.V1Pods, null, null, api.Token)).Items.ShouldBeEmpty();
    }

    [Fact]
    public async Task Kubectl_applies_a_crd_and_a_custom_resource_and_shows_its_printer_columns()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);
        var crd = Path.Combine(DeployDirectory.Path, "10-podmigration-crd.yaml");
        var migration = Write("migration.yaml", """
            apiVersion: podmigrate.io/v1alpha1
            kind: PodMigration
            metadata: {name: move-counter, namespace: default}
            spec:
              podName: counter
              targetNode: node-b
              mode: Migrate
              notYetModelled: {kept: true}
            """);

        (await kubectl("apply", "-f", crd)).ShouldContain("customresourcedefinition.apiextensions.k8s.io/podmigrations.podmigrate.io created");
        // kubectl validates strictly by default: the server checks a custom resource against its CRD's schema.
        var strict = await ProcessRunner.RunAsync(Spec(api, "apply", "-f", migration), api.Token);
        strict.ExitCode.ShouldNotBe(0);
        strict.StandardError.ShouldContain("strict decoding error: unknown field \"spec.notYetModelled\"");
        // Asked to keep what it does not know, the server stores the field (it does not prune, unlike a real one).
        (await kubectl("apply", "--validate=false", "-f", migration)).ShouldContain("podmigration.podmigrate.io/move-counter created");

        var kind = KubeResources.Custom("podmigrate.io", "v1alpha1", "podmigrations", "PodMigration");
        await api.Client.PatchAsync(kind, "default", "move-counter", PatchType.MergePatch,
            """{"status":{"phase":"Checkpointing","sourceNode":"node-a","targetNode":"node-b","downtime":"1.2s"}}""", status: true, api.Token);
        var table = (await kubectl("get", "podmigrations")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        table[0].Split(' ', StringSplitOptions.RemoveEmptyEntries).ShouldBe(["NAME", "PHASE", "SOURCE", "TARGET", "DOWNTIME", "AGE"]);
        table[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..5].ShouldBe(["move-counter", "Checkpointing", "node-a", "node-b", "1.2s"]);


        var json = await kubectl("get", "pmig", "move-counter", "-o", "json");
        using (var document = JsonDocument.Parse(json))
        {
            document.RootElement.GetProperty("spec").GetProperty("notYetModelled").GetProperty("kept").GetBoolean().ShouldBeTrue();
        }
        (await kubectl("describe", "podmigration", "move-counter")).ShouldContain("Checkpointing");

        // The example in deploy/ is a valid PodMigration too (applied over the test's: its extra field goes, as kubectl apply does).
        (await kubectl("apply", "-n", "default", "-f", Path.Combine(DeployDirectory.Path, "examples", "move-counter.yaml")))
            .ShouldContain("podmigration.podmigrate.io/move-counter configured");

        (await kubectl("delete", "-f", migration)).ShouldContain("deleted");
        (await api.Client.ListAsync(kind, null, null, api.Token)).Items.ShouldBeEmpty();
    }

    [Fact]
    public async Task Kubectl_warns_about_unknown_fields_of_a_custom_resource_when_asked_to()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);
        await kubectl("apply", "-f", Path.Combine(DeployDirectory.Path, "10-podmigration-crd.yaml"));
        var migration = Write("typo.yaml", """
            apiVersion: podmigrate.io/v1alpha1
            kind: PodMigration
            metadata: {name: typo, namespace: default, labelz: {a: b}}
            spec: {podName: counter, targetNodes: node-b}
            """);

        var result = await ProcessRunner.RunAsync(Spec(api, "apply", "--validate=warn", "-f", migration), api.Token);

        result.EnsureSuccess().StandardOutput.ShouldContain("podmigration.podmigrate.io/typo created");
        result.StandardError.ShouldContain("Warning: unknown field \"metadata.labelz\"");
        result.StandardError.ShouldContain("Warning: unknown field \"spec.targetNodes\"");
    }

    [Fact]
    public async Task Kubectl_installs_the_system_from_deploy_idempotently_shows_it_and_removes_it()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);
        var deploy = DeployDirectory.Path;
        string[] system =
        [
            "namespace/podmigrate-system",
            "customresourcedefinition.apiextensions.k8s.io/podmigrations.podmigrate.io",
            "serviceaccount/podmigrate-controller",
            "serviceaccount/podmigrate-agent",
            "clusterrole.rbac.authorization.k8s.io/podmigrate-controller",
            "clusterrolebinding.rbac.authorization.k8s.io/podmigrate-controller",
            "role.rbac.authorization.k8s.io/podmigrate-controller",
            "rolebinding.rbac.authorization.k8s.io/podmigrate-controller",
            "persistentvolume/podmigrate-share",
            "persistentvolumeclaim/podmigrate-share",
            "deployment.apps/podmigrate-controller",
            "daemonset.apps/podmigrate-agent",
            "runtimeclass.node.k8s.io/podmigrate",
            "service/podmigrate-webhook",
            "validatingwebhookconfiguration.admissionregistration.k8s.io/podmigrate-eviction",
        ];

        // Default validation (no --validate=false); the examples and the SMB alternative in sub-directories stay out.
        var applied = Lines(await kubectl("apply", "-f", deploy));
        applied.ShouldBe(system.Select(o => $"{o} created"), ignoreOrder: true);

        var table = await kubectl("get", "deploy,ds,clusterroles", "-A");
        table.ShouldContain("podmigrate-system   deployment.apps/podmigrate-controller   0/2");
        table.ShouldContain("podmigrate-system   daemonset.apps/podmigrate-agent");
        table.ShouldContain("clusterrole.rbac.authorization.k8s.io/podmigrate-controller");
        var pv = Lines(await kubectl("get", "pv", "podmigrate-share"));
        pv[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..6].ShouldBe(["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY"]);
        pv[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..6].ShouldBe(["podmigrate-share", "200Gi", "RWX", "Retain", "Pending", "podmigrate-system/podmigrate-share"]);
        (await kubectl("get", "rolebinding", "-n", "podmigrate-system", "-o", "wide")).ShouldContain("podmigrate-system/podmigrate-controller");

        // Re-applying changes nothing, with -f or -k (the Kustomization applies the same objects unchanged).
        Lines(await kubectl("apply", "-f", deploy)).ShouldBe(system.Select(o => $"{o} unchanged"), ignoreOrder: true);
        Lines(await kubectl("apply", "-k", deploy)).ShouldBe(system.Select(o => $"{o} unchanged"), ignoreOrder: true);

        // The namespace is deleted first (name order) and stays Terminating while the rest of its content is deleted.
        var deleted = Lines(await kubectl("delete", "-f", deploy));
        deleted.ShouldBe(system.Select(o => $"{o.Replace("/", " \"", StringComparison.Ordinal)}\" deleted"), ignoreOrder: true);
        (await api.Client.ListAsync(KubeResources.Namespaces, null, null, api.Token)).Items.ShouldNotContain(n => n.Metadata.Name == "podmigrate-system");
        (await kubectl("get", "clusterroles,pv,crd", "-o", "name")).ShouldBeEmpty();
    }

    [Fact]
    public async Task Kubectl_installs_the_system_with_kustomize()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);

        var applied = Lines(await kubectl("apply", "-k", DeployDirectory.Path));

        applied.Count.ShouldBe(15);
        applied.ShouldAllBe(l => l.EndsWith(" created", StringComparison.Ordinal));
        applied.ShouldContain("daemonset.apps/podmigrate-agent created");
        applied.ShouldContain("runtimeclass.node.k8s.io/podmigrate created");
        (await kubectl("get", "ds", "-n", "podmigrate-system", "-o", "jsonpath={.items[0].spec.template.spec.hostPID}")).ShouldBe("true");
    }

    [Fact]
    public async Task Kubectl_reports_a_missing_object_as_an_error()
    {
        await using var api = await ApiServerFixture.StartAsync();
        _ = await KubectlAsync(api);
        var spec = Spec(api, "get", "pod", "nothing");
        var result = await ProcessRunner.RunAsync(spec, api.Token);
        result.ExitCode.ShouldNotBe(0);
        result.StandardError.ShouldContain("pods \"nothing\" not found");
    }

    private static List<string> Lines(string output) => [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    private string Write(string name, string text)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>A kubectl bound to this server (own kubeconfig and discovery cache); each call must exit 0 and returns stdout.</summary>
    private async Task<KubectlCall> KubectlAsync(ApiServerFixture api)
    {
        if (!File.Exists(Kubectl))
        {
            throw PodMigrateException.FailedPrecondition($"{Kubectl} is missing: run scripts/setup.sh (it installs Debian's kubectl)");
        }
        await api.Server.WriteKubeconfigAsync(Path.Combine(_directory, "kubeconfig"), api.Token);
        return async args =>
        {
            var result = await ProcessRunner.RunAsync(Spec(api, args), api.Token);
            result.ExitCode.ShouldBe(0, $"kubectl {string.Join(' ', args)} failed:\n{result.StandardError}{result.StandardOutput}");
            return result.StandardOutput;
        };
    }

    private ProcessSpec Spec(ApiServerFixture api, params string[] args)
        => new(Kubectl, ["--kubeconfig", Path.Combine(_directory, "kubeconfig"), "--cache-dir", Path.Combine(_directory, "cache"), "--request-timeout", "20s", .. args])
        {
            Environment = new Dictionary<string, string?> { ["HOME"] = _directory, ["KUBECONFIG"] = null },
            Timeout = TimeSpan.FromSeconds(30),
        };
}
