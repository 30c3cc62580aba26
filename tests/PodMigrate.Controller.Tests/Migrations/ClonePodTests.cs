using System.Text.Json;
using PodMigrate.Controller.Migrations;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
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
           "resources":{"limits":{"memory":"64Mi"}},"readinessProbe":{"httpGet":{"path":"/","port":8080}}}],
           "volumes":[{"name":"cfg","configMap":{"name":"c"}}]},
         "status":{"phase":"Running","podIP":"10.88.1.5"}}
        """;

    [Fact]
    public void Clone_keeps_the_spec_binds_the_target_runs_the_checkpoint_image_and_is_not_owned_yet()
    {
        var source = KubeJson.Deserialize(SourceJson, KubeClientJsonContext.Default.Pod, "source");
        var migration = MigrationSpecTests.Migration("move-counter", "abcde123-0000");
        var clone = ClonePods.Build(source, migration, ClonePods.NameFor(migration, "counter"), "node-b", "counter", new CloneRestore("ck1", CheckpointImage: "localhost/podmigrate/checkpoint/default-counter:ck1"));

        clone.Metadata.Name.ShouldBe("counter-abcde");
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
        clone.Spec.Containers[0].Image.ShouldBe("localhost/podmigrate/checkpoint/default-counter:ck1");
        clone.Spec.Containers[0].ImagePullPolicy.ShouldBe("IfNotPresent");
        clone.Status.ShouldBeNull();

        // Fields the models do not name survive the copy.
        var json = JsonDocument.Parse(KubeJson.Serialize(clone, KubeClientJsonContext.Default.Pod)).RootElement;
        json.GetProperty("spec").GetProperty("containers")[0].GetProperty("readinessProbe").GetProperty("httpGet").GetProperty("port").GetInt32().ShouldBe(8080);
        json.GetProperty("spec").GetProperty("containers")[0].GetProperty("resources").GetProperty("limits").GetProperty("memory").GetString().ShouldBe("64Mi");
        json.GetProperty("spec").GetProperty("volumes")[0].GetProperty("configMap").GetProperty("name").GetString().ShouldBe("c");
        // The source is untouched.
        source.Spec.NodeName.ShouldBe("node-a");
        source.Spec.Containers[0].Image.ShouldBe("localhost:5000/podmigrate/counter:1");
    }

    [Fact]
    public void Adoption_patch_hands_over_the_owner_references()
    {
        var source = KubeJson.Deserialize(SourceJson, KubeClientJsonContext.Default.Pod, "source");
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
        var pod = KubeJson.Deserialize($$"""{"metadata":{"name":"x","namespace":"d"},"spec":{"containers":[{"name":"c"}]},"status":{{statusJson}}}""", KubeClientJsonContext.Default.Pod, "pod");
        CloneHealth.Of(pod, "c").State.ToString().ShouldBe(expected);
    }
}
