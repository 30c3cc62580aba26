using System.Text.Json;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// Debian's kubectl against the in-process API server, as a subprocess. The server serves no OpenAPI, so apply runs
/// with --validate=false. Needs /usr/bin/kubectl (scripts/setup.sh installs it): without it these tests fail, saying so.
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

        (await kubectl("apply", "--validate=false", "-f", manifest)).ShouldContain("pod/counter created");
        var pod = await api.Client.GetAsync(KubeResources.Pods, "default", "counter", api.Token);
        pod.Spec.ExtensionData!["priority"].GetInt32().ShouldBe(7);
        pod.Metadata.Annotations!.ShouldContainKey("kubectl.kubernetes.io/last-applied-configuration");

        // A node reports the pod running: kubectl shows what the status subresource says.
        await api.Client.PatchAsync(KubeResources.Pods, "default", "counter", PatchType.MergePatch,
            """{"status":{"phase":"Running","podIP":"10.88.1.7","containerStatuses":[{"name":"counter","ready":true,"restartCount":2,"image":"x","imageID":""}]}}""",
            status: true, api.Token);
        var wide = await kubectl("get", "pods", "-A", "-o", "wide");
        var row = wide.Split('\n').Single(l => l.StartsWith("default", StringComparison.Ordinal));
        row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..5].ShouldBe(["default", "counter", "1/1", "Running", "2"]);
        row.ShouldContain("10.88.1.7");

        // Re-applying a changed manifest goes through kubectl's strategic merge patch.
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("{app: counter}", "{app: counter, tier: demo}", StringComparison.Ordinal));
        (await kubectl("apply", "--validate=false", "-f", manifest)).ShouldContain("pod/counter configured");
        (await api.Client.GetAsync(KubeResources.Pods, "default", "counter", api.Token)).Metadata.Labels!["tier"].ShouldBe("demo");

        await api.Client.CreateAsync(KubeResources.Events, "default", new KubeEvent
        {
            Metadata = new ObjectMeta { GenerateName = "counter." },
            InvolvedObject = new ObjectReference { Kind = "Pod", Name = "counter", Namespace = "default", Uid = pod.Metadata.Uid },
            Reason = "Checkpointed",
            Message = "checkpoint c1 written",
            Type = "Normal",
        }, api.Token);
        var describe = await kubectl("describe", "pod", "counter");
        describe.ShouldContain("Status:       Running");
        describe.ShouldContain("checkpoint c1 written");

        (await kubectl("delete", "pod", "counter")).ShouldContain("pod \"counter\" deleted");
        (await api.Client.ListAsync(KubeResources.Pods, null, null, api.Token)).Items.ShouldBeEmpty();
    }

    [Fact]
    public async Task Kubectl_applies_a_crd_and_a_custom_resource_and_shows_its_printer_columns()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var kubectl = await KubectlAsync(api);
        var crd = Path.Combine(AppContext.BaseDirectory, "deploy", "crds", "podmigration.yaml");
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

        (await kubectl("apply", "--validate=false", "-f", crd)).ShouldContain("customresourcedefinition.apiextensions.k8s.io/podmigrations.podmigrate.io created");
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
        (await kubectl("apply", "--validate=false", "-n", "default", "-f", Path.Combine(AppContext.BaseDirectory, "deploy", "examples", "move-counter.yaml")))
            .ShouldContain("podmigration.podmigrate.io/move-counter configured");

        (await kubectl("delete", "-f", migration)).ShouldContain("deleted");
        (await api.Client.ListAsync(kind, null, null, api.Token)).Items.ShouldBeEmpty();
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
        return async args => (await ProcessRunner.RunAsync(Spec(api, args), api.Token)).EnsureSuccess().StandardOutput;
    }

    private ProcessSpec Spec(ApiServerFixture api, params string[] args)
        => new(Kubectl, ["--kubeconfig", Path.Combine(_directory, "kubeconfig"), "--cache-dir", Path.Combine(_directory, "cache"), "--request-timeout", "20s", .. args])
        {
            Environment = new Dictionary<string, string?> { ["HOME"] = _directory, ["KUBECONFIG"] = null },
            Timeout = TimeSpan.FromSeconds(30),
        };
}
