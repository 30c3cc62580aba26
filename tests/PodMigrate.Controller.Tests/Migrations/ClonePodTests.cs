using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using PodMigrate.Controller.Migrations;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Tests.Migrations;

public sealed class ClonePodTests
{
    private const string SourceJson = """
        {"apiVersion":"v1","kind":"Pod",
         "metadata":{"name":"counter","namespace":"default","uid":"u-1","resourceVersion":"7","labels":{"app":"counter"},
           "annotations":{"team":"hpc","kubectl.kubernetes.io/last-applied-configuration":"{}"},
           "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}]},
         "spec":{"nodeName":"node-a","containers":[{"name":"counter","image":"localhost:5000/podmigrate/counter:1",
           "resources":{"limits":{"memory":"64Mi"}},"readinessProbe":{"httpGet":{"path":"/","port":8080}},
           "futureContainerField":{"mode":"x"}}],
           "volumes":[{"name":"cfg","configMap":{"name":"c"}}],
           "schedulingGates":[{"name":"g"}],
           "futureSpecField":{"hint":"kept","list":[1,2]}},
         "status":{"phase":"Running","podIP":"10.88.1.5"}}
        """;

    [Fact]
    public void Clone_keeps_the_spec_binds_the_target_runs_the_checkpoint_image_and_is_not_owned_yet()
    {
        var source = JsonNode.Parse(SourceJson)!.AsObject();
        var migration = MigrationSpecTests.Migration("move-counter", "abcde123-0000");
        var built = ClonePods.Build(source, migration, ClonePods.NameFor(migration, "counter"), "node-b", "counter", new CloneRestore("ck1", CheckpointImage: "localhost/podmigrate/checkpoint/default-counter:ck1"));
        var clone = PackageJson.FromNode<V1Pod>(built, "clone");

        clone.Metadata.Name.ShouldBe("counter-abcde");
        clone.Metadata.NamespaceProperty.ShouldBe("default");
        clone.Metadata.Uid.ShouldBeNull();
        clone.Metadata.ResourceVersion.ShouldBeNull();
        clone.Metadata.OwnerReferences.ShouldBeNull();
        clone.Metadata.Labels!["app"].ShouldBe("counter");
        clone.Metadata.Annotations!["team"].ShouldBe("hpc");
        clone.Metadata.Annotations.ShouldNotContainKey("kubectl.kubernetes.io/last-applied-configuration");
        clone.Metadata.Annotations[MigrationAnnotations.CloneOf].ShouldBe("counter");
        clone.Metadata.Annotations[MigrationAnnotations.Migration].ShouldBe("move-counter");
        clone.Metadata.Annotations[MigrationAnnotations.CheckpointId].ShouldBe("ck1");
        clone.Spec.NodeName.ShouldBe("node-b");
        clone.Spec.SchedulingGates.ShouldBeNull();
        clone.Spec.Containers[0].Image.ShouldBe("localhost/podmigrate/checkpoint/default-counter:ck1");
        clone.Spec.Containers[0].ImagePullPolicy.ShouldBe("IfNotPresent");
        clone.Status.ShouldBeNull();

        var json = JsonDocument.Parse(built.ToJsonString()).RootElement;
        json.GetProperty("spec").GetProperty("containers")[0].GetProperty("readinessProbe").GetProperty("httpGet").GetProperty("port").GetInt32().ShouldBe(8080);
        json.GetProperty("spec").GetProperty("containers")[0].GetProperty("resources").GetProperty("limits").GetProperty("memory").GetString().ShouldBe("64Mi");
        json.GetProperty("spec").GetProperty("volumes")[0].GetProperty("configMap").GetProperty("name").GetString().ShouldBe("c");
        // The source is untouched.
        source["spec"]!["nodeName"]!.GetValue<string>().ShouldBe("node-a");
        source["spec"]!["containers"]![0]!["image"]!.GetValue<string>().ShouldBe("localhost:5000/podmigrate/counter:1");
        source["status"].ShouldNotBeNull();
    }

    [Fact]
    public void Fields_of_the_source_newer_than_the_packages_models_survive_into_the_clone()
    {
        var source = JsonNode.Parse(SourceJson)!.AsObject();
        // What a copy through the package's model would lose: 21.0.8's V1PodSpec and V1Container have no such members.
        var throughModel = PackageJson.ToNode(PackageJson.FromNode<V1Pod>(source, "source"));
        throughModel["spec"]!.AsObject().ContainsKey("futureSpecField").ShouldBeFalse();
        throughModel["spec"]!["containers"]![0]!.AsObject().ContainsKey("futureContainerField").ShouldBeFalse();

        var migration = MigrationSpecTests.Migration("move-counter", "abcde123-0000");
        var restore = new CloneRestore("ck1", BaseImage: "localhost:5000/podmigrate/counter:1", LazyPages: true);
        var clone = ClonePods.Build(source, migration, ClonePods.NameFor(migration, "counter"), "node-b", "counter", restore);

        clone["spec"]!["futureSpecField"]!["hint"]!.GetValue<string>().ShouldBe("kept");
        clone["spec"]!["futureSpecField"]!["list"]!.AsArray().Count.ShouldBe(2);
        clone["spec"]!["containers"]![0]!["futureContainerField"]!["mode"]!.GetValue<string>().ShouldBe("x");
        // ...and the fields the controller sets are set.
        clone["spec"]!["runtimeClassName"]!.GetValue<string>().ShouldBe(CloneRestore.RuntimeClassName);
        clone["spec"]!["nodeName"]!.GetValue<string>().ShouldBe("node-b");
        clone["metadata"]!["annotations"]![PodMigrate.Runtime.Contract.RestoreAnnotations.Checkpoint]!.GetValue<string>().ShouldBe("ck1");
    }

    [Fact]
    public void Adoption_patch_hands_over_the_owner_references()
    {
        var source = PackageJson.FromNode<V1Pod>(JsonNode.Parse(SourceJson)!, "source");
        var patch = JsonDocument.Parse(ClonePods.AdoptionPatch(source)).RootElement.GetProperty("metadata").GetProperty("ownerReferences")[0];
        patch.GetProperty("kind").GetString().ShouldBe("ReplicaSet");
        patch.GetProperty("uid").GetString().ShouldBe("rs-1");
        patch.GetProperty("controller").GetBoolean().ShouldBeTrue();
    }

    [Theory]
    [InlineData("""{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"c","ready":true,"restartCount":0,"state":{"running":{}}}]}""", "Ready")]
    [InlineData("""{"phase":"Pending","containerStatuses":[{"name":"c","restartCount":0,"state":{"waiting":{"reason":"ContainerCreating"}}}]}""", "Starting")]
    [InlineData("""{"phase":"Pending","containerStatuses":[{"name":"c","restartCount":0,"state":{"waiting":{"reason":"CreateContainerError","message":"criu failed"}}}]}""", "Failed")]
    [InlineData("""{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"c","restartCount":1,"state":{"running":{}}}]}""", "Failed")]
    [InlineData("""{"phase":"Running","conditions":[{"type":"Ready","status":"False"}],"containerStatuses":[{"name":"c","restartCount":0,"state":{"running":{}}}]}""", "NotReady")]
    [InlineData("""{"phase":"Failed"}""", "Failed")]
    [InlineData("""{"phase":"Running","containerStatuses":[{"name":"c","restartCount":0,"state":{"terminated":{"exitCode":137}}}]}""", "Failed")]
    public void Clone_health(string statusJson, string expected)
    {
        var pod = KubeJson.Deserialize($$"""{"metadata":{"name":"x","namespace":"d"},"spec":{"containers":[{"name":"c"}]},"status":{{statusJson}}}""", PackageJson.TypeInfo<V1Pod>(), "pod");
        CloneHealth.Of(pod, "c").State.ToString().ShouldBe(expected);
    }
}
