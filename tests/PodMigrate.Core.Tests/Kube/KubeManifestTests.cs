using System.Text.Json;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Core.Tests.Kube;

[Trait("Category", "Unit")]
public sealed class KubeManifestTests
{
    private const string CounterYaml = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: counter
          labels: {app: counter, "version": "2"}
          annotations:
            note: |
              two
              lines
        spec:
          priority: 7            # not modelled: must survive a round trip
          terminationGracePeriodSeconds: 5
          containers:
            - name: counter
              image: localhost:5000/podmigrate/counter:1
              args: ["--interval", "100"]
              env:
                - {name: PORT, value: "8080"}
                - name: EMPTY
                  value: ''
              ports:
                - containerPort: 8080
                  protocol: TCP
              resources: {limits: {memory: 64Mi}}
        """;

    [Fact]
    public void A_yaml_pod_loads_into_the_typed_model()
    {
        var pod = KubeManifests.ReadPod(CounterYaml, "counter.yaml");

        pod.Metadata.Name.ShouldBe("counter");
        pod.Metadata.Labels!["version"].ShouldBe("2");
        pod.Metadata.Annotations!["note"].ShouldBe("two\nlines\n");
        pod.Spec.TerminationGracePeriodSeconds.ShouldBe(5);
        var container = pod.Spec.Containers.ShouldHaveSingleItem();
        container.Args.ShouldBe(["--interval", "100"]);
        container.Env!.Select(e => (e.Name, e.Value)).ShouldBe([("PORT", "8080"), ("EMPTY", "")]);
        container.Ports.ShouldHaveSingleItem().ContainerPort.ShouldBe(8080);
    }

    [Fact]
    public void A_manifest_round_trips_through_the_packages_json()
    {
        var pod = KubeManifests.ReadPod(CounterYaml, "counter.yaml");

        var json = KubeJson.Serialize(pod, PackageJson.TypeInfo<k8s.Models.V1Pod>());
        var again = KubeJson.Deserialize(json, PackageJson.TypeInfo<k8s.Models.V1Pod>(), "round trip");

        using var doc = JsonDocument.Parse(json);
        doc.RootElement.GetProperty("spec").GetProperty("priority").GetInt32().ShouldBe(7);
        doc.RootElement.GetProperty("spec").GetProperty("containers")[0].GetProperty("resources").GetProperty("limits").GetProperty("memory").GetString().ShouldBe("64Mi");
        doc.RootElement.GetProperty("spec").GetProperty("containers")[0].GetProperty("ports")[0].GetProperty("containerPort").GetInt32().ShouldBe(8080);
        doc.RootElement.TryGetProperty("status", out _).ShouldBeFalse("null fields are omitted, as the API server does");
        KubeJson.Serialize(again, PackageJson.TypeInfo<k8s.Models.V1Pod>()).ShouldBe(json);
    }

    [Fact]
    public void Json_manifests_are_read_the_same_way()
    {
        var pod = KubeManifests.ReadPod("""{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j","uid":"u-1"},"spec":{"containers":[{"name":"c","image":"i:1"}]}}""", "pod.json");

        pod.Metadata.Uid.ShouldBe("u-1");
        pod.Spec.Containers[0].Image.ShouldBe("i:1");
    }

    [Fact]
    public void Plain_scalars_are_typed_and_quoted_ones_stay_strings()
    {
        var json = System.Text.Encoding.UTF8.GetString(KubeYaml.ToJsonDocuments("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 0x10\ng: yes\nh: 12345678901234567890\n", "t.yaml").Single());

        json.ShouldBe("""{"a":1,"b":"1","c":true,"d":null,"e":1.5,"f":16,"g":"yes","h":12345678901234567890}""");
    }

    [Fact]
    public void Invalid_yaml_names_the_file_line_and_column()
    {
        var error = Should.Throw<PodMigrateException>(() => KubeManifests.ReadPod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n", "bad.yaml"));

        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldStartWith("bad.yaml:");
        error.Message.ShouldContain("invalid YAML");
    }

    [Fact]
    public void A_duplicate_key_is_an_error_with_its_line()
    {
        var error = Should.Throw<PodMigrateException>(() => KubeManifests.ReadPod("apiVersion: v1\nkind: Pod\nkind: Pod\n", "dup.yaml"));

        // YamlDotNet's loader finds it; the message gains the file and position.
        error.Message.ShouldStartWith("dup.yaml:3:1: invalid YAML:");
        error.Message.ShouldContain("kind");
    }

    [Fact]
    public void A_value_of_the_wrong_type_names_the_field()
    {
        var yaml = CounterYaml.Replace("value: \"8080\"", "value: 8080", StringComparison.Ordinal);

        var error = Should.Throw<PodMigrateException>(() => KubeManifests.ReadPod(yaml, "counter.yaml"));

        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldContain("$.spec.containers[0].env[0].value");
    }

    [Theory]
    [InlineData("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "expected apiVersion v1 kind Pod, found apiVersion apps/v1 kind Deployment")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n", "has no spec.containers")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {}\nspec: {containers: [{name: c, image: i}]}\n", "metadata.name is required")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n", "spec.containers[0].image is required")]
    [InlineData("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: y}\n", "expected one Pod manifest, found 2 documents")]
    [InlineData("- a\n- b\n", "a manifest must be a mapping")]
    public void Manifests_a_node_cannot_run_are_rejected_with_the_reason(string yaml, string reason)
    {
        var error = Should.Throw<PodMigrateException>(() => KubeManifests.ReadPod(yaml, "m.yaml"));

        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldContain(reason);
    }
}
