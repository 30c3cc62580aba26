using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using Runtime.V1;

namespace PodMigrate.Integration.Tests.NodeEmulator;

[Trait("Category", "Unit")]
public sealed class PodCriConfigTests
{
    private static readonly DateTimeOffset Seen = new(2026, 11, 22, 5, 0, 0, TimeSpan.Zero);

    private static V1Pod V1Pod() => KubeManifests.ReadPod("""
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shop
          uid: 0f2a
          labels: {app: web}
          annotations: {owner: team-a}
        spec:
          containers:
            - name: main
              image: localhost:5000/podmigrate/counter:1
              command: ["/bin/counter", "$(GREETING)", "$$(GREETING)", "$(UNSET)"]
              env:
                - {name: NAME, value: world}
                - {name: GREETING, value: "hello $(NAME)"}
              ports: [{name: http, containerPort: 8080}]
        """, "web.yaml");

    [Fact]
    public void The_node_layer_knows_no_Kubernetes_model()
    {
        // The pod spec's translation is the kubelet's (this emulator's); containerd, CRI and CRIU clients take CRI requests.
        typeof(KubeletPodRunner).Assembly.GetReferencedAssemblies().Select(a => a.Name).ShouldNotContain("PodMigrate.Kube");
    }

    [Fact]
    public void The_sandbox_config_is_the_one_kubelet_sends()
    {
        var config = PodCriConfig.BuildSandboxConfig(V1Pod(), attempt: 1, "file", Seen);

        config.Metadata.ShouldSatisfyAllConditions(
            m => m.Name.ShouldBe("web"), m => m.Namespace.ShouldBe("shop"), m => m.Uid.ShouldBe("0f2a"), m => m.Attempt.ShouldBe(1u));
        config.Hostname.ShouldBe("web");
        config.LogDirectory.ShouldBe("/var/log/pods/shop_web_0f2a");
        config.Labels.ShouldBe(new Dictionary<string, string>
        {
            ["app"] = "web",
            [KubeletLabels.PodName] = "web",
            [KubeletLabels.PodNamespace] = "shop",
            [KubeletLabels.PodUid] = "0f2a",
        }, ignoreOrder: true);
        config.Annotations["owner"].ShouldBe("team-a");
        config.Annotations[KubeletLabels.ConfigSource].ShouldBe("file");
        config.Annotations[KubeletLabels.ConfigSeen].ShouldBe("2026-11-22T05:00:00.0000000Z");
        config.Linux.CgroupParent.ShouldBe("/kubepods/besteffort/pod0f2a");
        var ns = config.Linux.SecurityContext.NamespaceOptions;
        (ns.Network, ns.Pid, ns.Ipc).ShouldBe((NamespaceMode.Pod, NamespaceMode.Container, NamespaceMode.Pod));
        config.PortMappings.ShouldHaveSingleItem().ContainerPort.ShouldBe(8080);
    }

    [Fact]
    public void The_container_config_carries_kubelets_labels_annotations_and_expanded_command()
    {
        var pod = V1Pod();

        var config = PodCriConfig.BuildContainerConfig(pod, pod.Spec.Containers[0], "sha256:abc", restartCount: 0);

        config.Image.Image.ShouldBe("sha256:abc");
        config.Image.UserSpecifiedImage.ShouldBe("localhost:5000/podmigrate/counter:1");
        config.LogPath.ShouldBe("main/0.log");
        config.Command.ShouldBe(["/bin/counter", "hello world", "$(GREETING)", "$(UNSET)"]);
        config.Envs.Select(e => (e.Key, e.Value.ToStringUtf8())).ShouldBe([("NAME", "world"), ("GREETING", "hello world")]);
        config.Labels.Keys.ShouldBe([KubeletLabels.PodName, KubeletLabels.PodNamespace, KubeletLabels.PodUid, KubeletLabels.ContainerName], ignoreOrder: true);
        config.Labels[KubeletLabels.ContainerName].ShouldBe("main");
        config.Annotations[KubeletLabels.ContainerRestartCount].ShouldBe("0");
        config.Annotations[KubeletLabels.PodTerminationGracePeriod].ShouldBe("30");
        config.Annotations[KubeletLabels.ContainerTerminationMessagePath].ShouldBe("/dev/termination-log");
        config.Annotations[KubeletLabels.ContainerPorts].ShouldBe("""[{"name":"http","containerPort":8080}]""");
        config.Annotations[KubeletLabels.ContainerHash].ShouldMatch("^[0-9a-f]{1,8}$");
        config.Linux.SecurityContext.NamespaceOptions.Pid.ShouldBe(NamespaceMode.Container);
        config.Linux.Resources.OomScoreAdj.ShouldBe(1000);
    }

    [Fact]
    public void The_container_hash_changes_with_the_container_spec_only()
    {
        var pod = V1Pod();
        var hash = PodCriConfig.Hash(pod.Spec.Containers[0]);

        PodCriConfig.Hash(V1Pod().Spec.Containers[0]).ShouldBe(hash);
        pod.Spec.Containers[0].Image = "localhost:5000/podmigrate/counter:2";
        PodCriConfig.Hash(pod.Spec.Containers[0]).ShouldNotBe(hash);
    }

    [Fact]
    public void Env_from_the_api_server_is_refused_rather_than_dropped()
    {
        var pod = KubeManifests.ReadPod("""
            apiVersion: v1
            kind: Pod
            metadata: {name: p, uid: u}
            spec:
              containers:
                - name: c
                  image: i:1
                  env: [{name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}]
            """, "p.yaml");

        var error = Should.Throw<PodMigrateException>(() => PodCriConfig.BuildContainerConfig(pod, pod.Spec.Containers[0], "i:1", 0));

        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldContain("POD_IP uses valueFrom");
    }
}
