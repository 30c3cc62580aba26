using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using k8s;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.NodeEmulator.Nodes;
using PodMigrate.TestKit.Cluster;
using Xunit.Abstractions;
using ContainerFilter = Runtime.V1.ContainerFilter;
using CriContainerState = Runtime.V1.ContainerState;
using PodSandboxState = Runtime.V1.PodSandboxState;

namespace PodMigrate.Integration.Tests.NodeEmulator;

/// <summary>
/// The node emulator against the shared cluster's real containerd (node-a, node-b) and an in-process API server: what
/// a kubelet would do, checked from both sides (the API objects and the runtime).
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class NodeEmulatorTests(LocalCluster cluster, ITestOutputHelper output)
{
    private const string NodeA = "node-a";
    private const string NodeB = "node-b";
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(100);

    [Fact(Timeout = 120_000)]
    public async Task Counter_pod_bound_to_node_a_runs_becomes_Ready_and_serves_its_count_at_its_pod_IP()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var manifest = TestPods.Counter(cluster.Image("counter"), "emu-run");
        manifest.Spec.Containers[0].ReadinessProbe = new V1Probe { HttpGet = new V1HTTPGetAction { Path = "/healthz", Port = "http" }, PeriodSeconds = 1 };

        var created = await nodes.CreatePodAsync(manifest, NodeA, cts.Token);
        var pod = await nodes.WaitForPodAsync(created, p => Condition(p, "Ready")?.Status == "True", "Ready", cts.Token);

        var status = pod.Status!;
        status.Phase.ShouldBe("Running");
        var podIp = status.PodIP.ShouldNotBeNull();
        IPNetwork.Parse(cluster.Info.Node(NodeA).Subnet).Contains(IPAddress.Parse(podIp)).ShouldBeTrue($"pod IP {podIp} is not in {NodeA}'s subnet");
        status.PodIPs.ShouldNotBeNull().ShouldHaveSingleItem().Ip.ShouldBe(podIp);
        status.HostIP.ShouldBe("127.0.0.1");
        status.StartTime.ShouldNotBeNull();
        foreach (var type in new[] { "PodScheduled", "Initialized", "PodReadyToStartContainers", "ContainersReady", "Ready" })
        {
            var condition = Condition(pod, type).ShouldNotBeNull($"condition {type}");
            condition.Status.ShouldBe("True", $"condition {type}");
            condition.LastTransitionTime.ShouldNotBeNull($"condition {type}");
        }
        var container = status.ContainerStatuses.ShouldNotBeNull().ShouldHaveSingleItem();
        container.Name.ShouldBe("counter");
        container.Ready.ShouldBeTrue();
        container.Started.ShouldBe(true);
        container.RestartCount.ShouldBe(0);
        container.Image.ShouldBe(cluster.Image("counter"));
        container.ImageID.ShouldNotBeNull().ShouldContain("sha256:");
        container.State.ShouldNotBeNull().Running.ShouldNotBeNull().StartedAt.ShouldNotBeNull();
        var containerId = container.ContainerID.ShouldNotBeNull();
        containerId.ShouldStartWith("containerd://");

        // The runtime agrees: the container the status names runs with kubelet's labels, in a sandbox marked as the emulator's.
        var cri = cluster.Cri(NodeA).Runtime;
        var running = await cri.ContainerStatusAsync(containerId["containerd://".Length..], cts.Token);
        running.State.ShouldBe(CriContainerState.ContainerRunning);
        running.Labels[KubeletLabels.PodUid].ShouldBe(pod.Metadata.Uid);
        running.Labels[KubeletLabels.ContainerName].ShouldBe("counter");
        running.Annotations[KubeletLabels.ContainerHash].ShouldBe(PodCriConfig.Hash(pod.Spec.Containers[0]));
        var sandbox = (await nodes.SandboxesAsync(NodeA, pod.Metadata.Uid!, cts.Token)).ShouldHaveSingleItem();
        sandbox.Labels[EmulatorLabels.SandboxNode].ShouldBe(NodeA);
        sandbox.Labels[EmulatorLabels.SandboxCluster].ShouldBe(nodes.ClusterId);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var url = new Uri($"http://{podIp}:{TestPods.HttpPort}/");
        var first = long.Parse(await http.GetStringAsync(url, cts.Token), CultureInfo.InvariantCulture);
        await EmulatedNodes.WaitForAsync(
            async ct => long.Parse(await http.GetStringAsync(url, ct), CultureInfo.InvariantCulture),
            count => count > first, "the counter to advance", cts.Token);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_node_is_registered_Ready_with_the_host_capacity_and_its_lease_is_renewed()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);

        var node = await nodes.Api.GetAsync(KubeResources.V1Nodes, null, NodeA, cts.Token);
        var labels = node.Metadata.Labels.ShouldNotBeNull();
        labels[EmulatorLabels.Hostname].ShouldBe(NodeA);
        labels[EmulatorLabels.Os].ShouldBe("linux");
        labels[EmulatorLabels.Arch].ShouldBe(HostFacts.GoArch(RuntimeInformation.OSArchitecture));
        var status = node.Status.ShouldNotBeNull();
        var ready = status.Conditions.ShouldNotBeNull().Single(c => c.Type == "Ready");
        ready.Status.ShouldBe("True");
        ready.Reason.ShouldBe("KubeletReady");
        ready.LastHeartbeatTime.ShouldNotBeNull();
        ready.LastTransitionTime.ShouldNotBeNull();
        var capacity = status.Capacity.ShouldNotBeNull();
        capacity["cpu"].ToString().ShouldBe(Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture));
        capacity["pods"].ToString().ShouldBe("110");
        var memoryKib = capacity["memory"].ToInt64() / 1024;
        memoryKib.ShouldBeGreaterThan(1024L * 1024, "the host has more than 1 GiB");
        (status.Allocatable.ShouldNotBeNull()["memory"].ToInt64() / 1024).ShouldBeLessThan(memoryKib, "the eviction reserve is held back");
        status.Addresses.ShouldNotBeNull().ShouldContain(a => a.Type == "InternalIP" && a.Address == "127.0.0.1");
        var info = status.NodeInfo.ShouldNotBeNull();
        info.ContainerRuntimeVersion.ShouldStartWith("containerd://");
        info.KubeletVersion.ShouldNotBeNullOrEmpty();
        info.OperatingSystem.ShouldBe("linux");
        info.KernelVersion.ShouldBe((await File.ReadAllTextAsync("/proc/sys/kernel/osrelease", cts.Token)).Trim());
        info.BootID.ShouldBe((await File.ReadAllTextAsync("/proc/sys/kernel/random/boot_id", cts.Token)).Trim());

        var lease = await nodes.Api.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync(NodeA, EmulatorLabels.NodeLeaseNamespace, cancellationToken: cts.Token);
        lease.Spec.HolderIdentity.ShouldBe(NodeA);
        lease.Spec.LeaseDurationSeconds.ShouldBe(4);
        lease.Metadata.OwnerReferences.ShouldNotBeNull().ShouldHaveSingleItem().Uid.ShouldBe(node.Metadata.Uid);
        var renewed = lease.Spec.RenewTime.ShouldNotBeNull();
        await EmulatedNodes.WaitForAsync(
            ct => nodes.Api.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync(NodeA, EmulatorLabels.NodeLeaseNamespace, cancellationToken: ct),
            l => l.Spec.RenewTime > renewed, "the lease to be renewed", cts.Token);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_missing_image_with_pull_policy_Never_leaves_the_container_waiting_with_ErrImageNeverPull()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var image = $"{cluster.Registry}/podmigrate/never-pulled-{Guid.NewGuid():N}:1";
        var manifest = TestPods.Counter(image, "emu-never");
        manifest.Spec.Containers[0].ImagePullPolicy = "Never";

        var created = await nodes.CreatePodAsync(manifest, NodeA, cts.Token);
        var pod = await nodes.WaitForPodAsync(created, p => Waiting(p)?.Reason == "ErrImageNeverPull", "ErrImageNeverPull", cts.Token);

        pod.Status!.Phase.ShouldBe("Pending");
        Condition(pod, "Ready")!.Status.ShouldBe("False");
        Condition(pod, "ContainersReady")!.Reason.ShouldBe("ContainersNotReady");
        Waiting(pod)!.Message.ShouldNotBeNull().ShouldContain(image);
        var container = pod.Status.ContainerStatuses!.Single();
        container.ContainerID.ShouldBeNull();
        container.Ready.ShouldBeFalse();
        var byPod = new ContainerFilter();
        byPod.LabelSelector[KubeletLabels.PodUid] = pod.Metadata.Uid;
        (await cluster.Cri(NodeA).Runtime.ListContainersAsync(byPod, cts.Token)).ShouldBeEmpty("no container is created without its image");
    }

    [Fact(Timeout = 120_000)]
    public async Task A_failing_readiness_probe_keeps_the_pod_unready_until_it_passes_and_failing_again_makes_it_unready()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var manifest = TestPods.Counter(cluster.Image("counter"), "emu-probe");
        // Each probe leaves a mark, so the test can tell the probe has run (and failed) without sleeping.
        manifest.Spec.Containers[0].ReadinessProbe = new V1Probe
        {
            Exec = new V1ExecAction { Command = ["sh", "-c", "echo . >> /tmp/probes; test \"$(cat /tmp/ready)\" = yes"] },
            PeriodSeconds = 1,
            FailureThreshold = 1,
        };

        var created = await nodes.CreatePodAsync(manifest, NodeA, cts.Token);
        var running = await nodes.WaitForPodAsync(created, p => p.Status?.Phase == "Running", "Running", cts.Token);
        var containerId = running.Status!.ContainerStatuses!.Single().ContainerID!["containerd://".Length..];
        var cri = cluster.Cri(NodeA).Runtime;
        await EmulatedNodes.WaitForAsync(
            async ct => (await cri.ExecSyncAsync(containerId, ["cat", "/tmp/probes"], TimeSpan.FromSeconds(10), ct)).Stdout.ToStringUtf8().Count(c => c == '.'),
            probes => probes >= 3, "three readiness probes", cts.Token);

        var unready = await nodes.Api.GetAsync(KubeResources.V1Pods, TestPods.Namespace, created.Metadata.Name!, cts.Token);
        unready.Status!.Phase.ShouldBe("Running");
        Condition(unready, "Ready")!.Status.ShouldBe("False");
        Condition(unready, "ContainersReady")!.Message.ShouldBe("containers with unready status: [counter]");
        unready.Status.ContainerStatuses!.Single().Ready.ShouldBeFalse();

        (await cri.ExecSyncAsync(containerId, ["sh", "-c", "echo yes > /tmp/ready"], TimeSpan.FromSeconds(10), cts.Token)).ExitCode.ShouldBe(0);
        var ready = await nodes.WaitForPodAsync(created, p => Condition(p, "Ready")?.Status == "True", "Ready once the probe passes", cts.Token);
        Condition(ready, "ContainersReady")!.Status.ShouldBe("True");
        ready.Status!.ContainerStatuses!.Single().Ready.ShouldBeTrue();

        (await cri.ExecSyncAsync(containerId, ["sh", "-c", "echo no > /tmp/ready"], TimeSpan.FromSeconds(10), cts.Token)).ExitCode.ShouldBe(0);
        var again = await nodes.WaitForPodAsync(created, p => Condition(p, "Ready")?.Status == "False", "unready once the probe fails", cts.Token);
        again.Status!.Phase.ShouldBe("Running");
        again.Status.ContainerStatuses!.Single().RestartCount.ShouldBe(0, "readiness never restarts a container");
    }

    [Fact(Timeout = 120_000)]
    public async Task Deleting_a_pod_stops_its_container_removes_its_sandbox_and_then_the_pod_object()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var created = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-delete"), NodeA, cts.Token);
        var pod = await nodes.WaitForPodAsync(created, p => Condition(p, "Ready")?.Status == "True", "Ready", cts.Token);
        var uid = pod.Metadata.Uid!;
        var containerId = pod.Status!.ContainerStatuses!.Single().ContainerID!["containerd://".Length..];
        Directory.Exists(KubeletPodConfig.LogDirectory(TestPods.Namespace, pod.Metadata.Name!, uid)).ShouldBeTrue();

        // A grace period far beyond the test's budget: the pod can only be gone in time if the counter ended on SIGTERM,
        // not by the SIGKILL at the end of the grace period (no wall-clock margin to break on a busy machine).
        var terminating = await nodes.Api.DeleteAsync(KubeResources.V1Pods, TestPods.Namespace, pod.Metadata.Name!, new DeleteOptions { GracePeriodSeconds = 3600 }, cts.Token);
        terminating.ShouldNotBeNull("a pod bound to a node waits for its kubelet").Metadata.DeletionTimestamp.ShouldNotBeNull();
        await nodes.WaitForPodGoneAsync(pod, cts.Token);

        (await nodes.SandboxesAsync(NodeA, uid, cts.Token)).ShouldBeEmpty();
        var missing = await Should.ThrowAsync<PodMigrateException>(() => cluster.Cri(NodeA).Runtime.ContainerStatusAsync(containerId, cts.Token));
        missing.Kind.ShouldBe(ErrorKind.NotFound);
        Directory.Exists(KubeletPodConfig.LogDirectory(TestPods.Namespace, pod.Metadata.Name!, uid)).ShouldBeFalse();
    }

    [Fact(Timeout = 120_000)]
    public async Task A_sandbox_left_by_a_stopped_emulator_for_a_pod_deleted_meanwhile_is_removed_at_the_next_start_and_foreign_sandboxes_stay()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        var foreign = TestPods.Counter(cluster.Image("counter"), "emu-foreign");
        var runner = cluster.Runner(NodeA);
        // A pod made on the node by someone else (the agent restores pods this way): the emulator must never touch it.
        await runner.RunAsync(foreign, cts.Token);
        try
        {
            await nodes.StartEmulatorAsync(NodeA, cts.Token);
            var created = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-orphan"), NodeA, cts.Token);
            var pod = await nodes.WaitForPodAsync(created, p => p.Status?.Phase == "Running", "Running", cts.Token);
            var uid = pod.Metadata.Uid!;

            await nodes.StopEmulatorAsync(NodeA);
            await nodes.Api.DeleteAsync(KubeResources.V1Pods, TestPods.Namespace, pod.Metadata.Name!, new DeleteOptions { GracePeriodSeconds = 0 }, cts.Token);
            await nodes.WaitForPodGoneAsync(pod, cts.Token);
            (await nodes.SandboxesAsync(NodeA, uid, cts.Token)).ShouldHaveSingleItem("a stopped emulator leaves its pods as they are")
                .State.ShouldBe(PodSandboxState.SandboxReady);

            await nodes.StartEmulatorAsync(NodeA, cts.Token);
            await EmulatedNodes.WaitForAsync(ct => nodes.SandboxesAsync(NodeA, uid, ct), s => s.Count == 0, "the orphaned sandbox to be removed", cts.Token);

            var survivor = (await runner.GetAsync(TestPods.Namespace, foreign.Metadata.Name!, cts.Token)).ShouldNotBeNull("the foreign pod is still there");
            survivor.State.ShouldBe("Ready");
            survivor.Containers.ShouldHaveSingleItem().State.ShouldBe("Running");
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await runner.RemoveAsync(TestPods.Namespace, foreign.Metadata.Name!, TimeSpan.FromSeconds(2), cleanup.Token);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_restarted_emulator_adopts_the_running_pods_without_restarting_them()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var created = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-adopt"), NodeA, cts.Token);
        var before = await nodes.WaitForPodAsync(created, p => Condition(p, "Ready")?.Status == "True", "Ready", cts.Token);
        var sandboxId = (await nodes.SandboxesAsync(NodeA, before.Metadata.Uid!, cts.Token)).ShouldHaveSingleItem().Id;

        await nodes.StopEmulatorAsync(NodeA);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        // A pod created after the restart runs: by then the new emulator has synced the pod it found at start-up.
        var later = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-adopt-later"), NodeA, cts.Token);
        await nodes.WaitForPodAsync(later, p => Condition(p, "Ready")?.Status == "True", "Ready", cts.Token);

        var after = await nodes.Api.GetAsync(KubeResources.V1Pods, TestPods.Namespace, created.Metadata.Name!, cts.Token);
        after.Status!.Phase.ShouldBe("Running");
        Condition(after, "Ready")!.Status.ShouldBe("True");
        Condition(after, "Ready")!.LastTransitionTime.ShouldBe(Condition(before, "Ready")!.LastTransitionTime);
        var container = after.Status.ContainerStatuses!.Single();
        container.ContainerID.ShouldBe(before.Status!.ContainerStatuses!.Single().ContainerID);
        container.RestartCount.ShouldBe(0);
        (await nodes.SandboxesAsync(NodeA, after.Metadata.Uid!, cts.Token)).ShouldHaveSingleItem().Id.ShouldBe(sandboxId);
    }

    [Fact(Timeout = 120_000)]
    public async Task The_agent_mirror_pod_is_published_Running_with_readiness_from_a_tcp_check_of_the_agent_port_and_is_never_run()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        // Stands in for the agent's gRPC port, so that the test can take it away.
        var agent = new TcpListener(IPAddress.Loopback, 0);
        agent.Start();
        try
        {
            var port = ((IPEndPoint)agent.LocalEndpoint).Port;
            await nodes.StartEmulatorAsync(NodeA, cts.Token, options => options.AgentPort = port);
            var name = EmulatorLabels.AgentMirrorPodName(NodeA);
            var mirrorRef = new V1Pod { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = EmulatorLabels.AgentNamespace } };

            var mirror = await nodes.WaitForPodAsync(mirrorRef, p => Condition(p, "Ready")?.Status == "True", "Ready", cts.Token);

            await nodes.Api.GetAsync(KubeResources.Namespaces, null, EmulatorLabels.AgentNamespace, cts.Token);
            mirror.Metadata.Labels.ShouldNotBeNull()[EmulatorLabels.AppName].ShouldBe("podmigrate-agent");
            mirror.Metadata.Labels[EmulatorLabels.AppComponent].ShouldBe("agent");
            var annotations = mirror.Metadata.Annotations.ShouldNotBeNull();
            annotations[EmulatorLabels.ConfigMirror].ShouldNotBeNullOrEmpty();
            annotations[KubeletLabels.ConfigSource].ShouldBe("file");
            var node = await nodes.Api.GetAsync(KubeResources.V1Nodes, null, NodeA, cts.Token);
            mirror.Metadata.OwnerReferences.ShouldNotBeNull().ShouldHaveSingleItem().Uid.ShouldBe(node.Metadata.Uid);
            mirror.Spec.NodeName.ShouldBe(NodeA);
            mirror.Spec.HostNetwork.ShouldBe(true);
            var container = mirror.Spec.Containers.ShouldHaveSingleItem();
            container.Name.ShouldBe("agent");
            var grpc = container.Ports.ShouldNotBeNull().ShouldHaveSingleItem();
            grpc.Name.ShouldBe("grpc");
            grpc.ContainerPort.ShouldBe(port);
            mirror.Status!.Phase.ShouldBe("Running");
            mirror.Status.PodIP.ShouldBe("127.0.0.1");
            mirror.Status.HostIP.ShouldBe("127.0.0.1");
            mirror.Status.ContainerStatuses.ShouldNotBeNull().ShouldHaveSingleItem().State!.Running.ShouldNotBeNull();

            agent.Stop();
            var down = await nodes.WaitForPodAsync(mirrorRef, p => Condition(p, "Ready")?.Status == "False", "unready once the port is closed", cts.Token);
            down.Status!.Phase.ShouldBe("Running");
            down.Status.ContainerStatuses!.Single().Ready.ShouldBeFalse();

            // kubelet recreates a mirror pod that someone deleted.
            await nodes.Api.DeleteAsync(KubeResources.V1Pods, EmulatorLabels.AgentNamespace, name, new DeleteOptions { GracePeriodSeconds = 0 }, cts.Token);
            var recreated = await nodes.WaitForPodAsync(mirrorRef, p => p.Metadata.Uid != mirror.Metadata.Uid && p.Status?.Phase == "Running", "the mirror pod recreated", cts.Token);
            recreated.Metadata.Annotations![EmulatorLabels.ConfigMirror].ShouldBe(annotations[EmulatorLabels.ConfigMirror], "the same manifest, the same hash");

            // Seconds of syncs later, nothing ran it: no sandbox of this test on the node, and its status is the mirror's own.
            (await nodes.EmulatedSandboxesAsync(NodeA, cts.Token)).ShouldBeEmpty("a mirror pod is never run");
            recreated.Status!.ContainerStatuses.ShouldNotBeNull().ShouldHaveSingleItem().State!.Running.ShouldNotBeNull();
        }
        finally
        {
            agent.Stop();
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task A_pod_bound_to_another_node_is_not_touched()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);

        var elsewhere = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-elsewhere"), NodeB, cts.Token);
        var here = await nodes.CreatePodAsync(TestPods.Counter(cluster.Image("counter"), "emu-here"), NodeA, cts.Token);
        // The pod created after it runs: the emulator has seen every event before, the other pod's included.
        await nodes.WaitForPodAsync(here, p => p.Status?.Phase == "Running", "Running", cts.Token);

        var untouched = await nodes.Api.GetAsync(KubeResources.V1Pods, TestPods.Namespace, elsewhere.Metadata.Name!, cts.Token);
        untouched.Metadata.ResourceVersion.ShouldBe(elsewhere.Metadata.ResourceVersion);
        untouched.Status!.ContainerStatuses.ShouldBeNull();
        untouched.Status.Conditions.ShouldBeNull();
        (await nodes.SandboxesAsync(NodeA, elsewhere.Metadata.Uid!, cts.Token)).ShouldBeEmpty();
        (await nodes.SandboxesAsync(NodeB, elsewhere.Metadata.Uid!, cts.Token)).ShouldBeEmpty();
    }

    [Fact(Timeout = 120_000)]
    public async Task Exited_containers_follow_the_restart_policy_with_back_off()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var nodes = await EmulatedNodes.StartAsync(cluster, output, cts.Token);
        await nodes.StartEmulatorAsync(NodeA, cts.Token);
        var crashing = await nodes.CreatePodAsync(Exiting("emu-crash", "Always", 3), NodeA, cts.Token);
        var failed = await nodes.CreatePodAsync(Exiting("emu-exit-never", "Never", 3), NodeA, cts.Token);
        var succeeded = await nodes.CreatePodAsync(Exiting("emu-onfailure", "OnFailure", 0), NodeA, cts.Token);

        var looping = await nodes.WaitForPodAsync(crashing,
            p => p.Status?.ContainerStatuses?.FirstOrDefault() is { RestartCount: >= 2, State.Waiting.Reason: "CrashLoopBackOff" },
            "CrashLoopBackOff after two restarts", cts.Token);
        looping.Status!.Phase.ShouldBe("Running", "restartPolicy Always: the pod stays Running while its container is restarted");
        var crash = looping.Status.ContainerStatuses!.Single();
        crash.State!.Waiting!.Message.ShouldNotBeNull().ShouldContain("back-off");
        crash.LastState.ShouldNotBeNull().Terminated.ShouldNotBeNull().ExitCode.ShouldBe(3);
        crash.Ready.ShouldBeFalse();

        var done = await nodes.WaitForPodAsync(failed, p => p.Status?.Phase == "Failed", "Failed", cts.Token);
        var never = done.Status!.ContainerStatuses!.Single();
        never.RestartCount.ShouldBe(0);
        never.State!.Terminated.ShouldNotBeNull().ExitCode.ShouldBe(3);
        never.State.Terminated.Reason.ShouldBe("Error");
        await EmulatedNodes.WaitForAsync(ct => nodes.SandboxesAsync(NodeA, done.Metadata.Uid!, ct), s => s.All(x => x.State == PodSandboxState.SandboxNotready),
            "the finished pod's sandbox stopped", cts.Token);

        var completed = await nodes.WaitForPodAsync(succeeded, p => p.Status?.Phase == "Succeeded", "Succeeded", cts.Token);
        var onFailure = completed.Status!.ContainerStatuses!.Single();
        onFailure.RestartCount.ShouldBe(0);
        onFailure.State!.Terminated.ShouldNotBeNull().Reason.ShouldBe("Completed");
        Condition(completed, "Ready")!.Reason.ShouldBe("PodCompleted");
    }

    private V1Pod Exiting(string prefix, string restartPolicy, int exitCode)
    {
        var pod = TestPods.Counter(cluster.Image("counter"), prefix);
        pod.Spec.RestartPolicy = restartPolicy;
        pod.Spec.Containers[0].Command = ["sh", "-c", $"exit {exitCode}"];
        return pod;
    }

    private static V1PodCondition? Condition(V1Pod pod, string type) => pod.Status?.Conditions?.FirstOrDefault(c => c.Type == type);

    private static V1ContainerStateWaiting? Waiting(V1Pod pod) => pod.Status?.ContainerStatuses?.FirstOrDefault()?.State?.Waiting;

    private static long Kib(string quantity)
    {
        quantity.ShouldEndWith("Ki");
        return long.Parse(quantity[..^2], CultureInfo.InvariantCulture);
    }
}
