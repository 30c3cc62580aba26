using System.Globalization;
using System.Net;
using k8s.Models;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Cluster;
using Runtime.V1;

namespace PodMigrate.Integration.Tests.Cluster;

/// <summary>Pods run through containerd's CRI on the shared local cluster, the way kubelet runs them.</summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class CriPodTests(LocalCluster cluster)
{
    private const string NodeA = "node-a";
    private const string NodeB = "node-b";
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(100);

    [Fact(Timeout = 120_000)]
    public async Task Counter_pod_runs_on_node_a_and_its_counter_advances()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = TestPods.Counter(cluster.Image("counter"), "advance");
        await using var _ = await RunAsync(NodeA, pod, cts.Token);
        var started = (await cluster.Runner(NodeA).GetAsync(TestPods.Namespace, pod.Metadata.Name!, cts.Token)).ShouldNotBeNull();

        started.State.ShouldBe("Ready");
        started.Containers.ShouldHaveSingleItem().State.ShouldBe("Running");
        InSubnet(started.Ip.ShouldNotBeNull(), cluster.Info.Node(NodeA).Subnet).ShouldBeTrue($"pod IP {started.Ip} is not in {NodeA}'s subnet");

        var first = await ReadCountAsync(NodeA, pod, cts.Token);
        var second = await WaitForCountAboveAsync(NodeA, pod, first, cts.Token);
        second.ShouldBeGreaterThan(first);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var served = long.Parse((await http.GetStringAsync(new Uri($"http://{started.Ip}:{TestPods.HttpPort}/"), cts.Token)).Trim(), CultureInfo.InvariantCulture);
        served.ShouldBeGreaterThanOrEqualTo(second);
    }

    [Fact(Timeout = 120_000)]
    public async Task Pod_on_node_a_reaches_pod_on_node_b_by_pod_ip()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var podA = TestPods.Counter(cluster.Image("counter"), "net-a");
        var podB = TestPods.Counter(cluster.Image("counter"), "net-b");
        await using var a = await RunAsync(NodeA, podA, cts.Token);
        await using var b = await RunAsync(NodeB, podB, cts.Token);
        var ipA = (await cluster.Runner(NodeA).GetAsync(TestPods.Namespace, podA.Metadata.Name!, cts.Token))!.Ip.ShouldNotBeNull();
        var ipB = (await cluster.Runner(NodeB).GetAsync(TestPods.Namespace, podB.Metadata.Name!, cts.Token))!.Ip.ShouldNotBeNull();
        InSubnet(ipB, cluster.Info.Node(NodeB).Subnet).ShouldBeTrue($"pod IP {ipB} is not in {NodeB}'s subnet");
        // Both counters have ticked, so both serve HTTP. (busybox-static's wget crashes with -T: ExecSync's timeout bounds it.)
        await ReadCountAsync(NodeA, podA, cts.Token);
        await ReadCountAsync(NodeB, podB, cts.Token);

        var fromA = await cluster.Runner(NodeA).ExecAsync(TestPods.Namespace, podA.Metadata.Name!, null, ["wget", "-qO-", $"http://{ipB}:{TestPods.HttpPort}/"], TimeSpan.FromSeconds(15), cts.Token);
        fromA.ExitCode.ShouldBe(0, $"wget from {NodeA} to {ipB} failed: {fromA.Stderr}");
        long.TryParse(fromA.Stdout.Trim(), CultureInfo.InvariantCulture, out _).ShouldBeTrue($"not a counter value: \"{fromA.Stdout}\"");

        var fromB = await cluster.Runner(NodeB).ExecAsync(TestPods.Namespace, podB.Metadata.Name!, null, ["wget", "-qO-", $"http://{ipA}:{TestPods.HttpPort}/"], TimeSpan.FromSeconds(15), cts.Token);
        fromB.ExitCode.ShouldBe(0, $"wget from {NodeB} to {ipA} failed: {fromB.Stderr}");
    }

    [Fact(Timeout = 120_000)]
    public async Task Kubelet_labels_and_annotations_appear_in_container_and_sandbox_status()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = TestPods.Counter(cluster.Image("counter"), "labels");
        await using var _ = await RunAsync(NodeA, pod, cts.Token);
        var started = (await cluster.Runner(NodeA).GetAsync(TestPods.Namespace, pod.Metadata.Name!, cts.Token))!;
        var cri = cluster.Cri(NodeA).Runtime;

        var status = await cri.ContainerStatusAsync(started.Containers[0].Id, cts.Token);
        status.Labels[KubeletLabels.PodName].ShouldBe(pod.Metadata.Name);
        status.Labels[KubeletLabels.PodNamespace].ShouldBe(TestPods.Namespace);
        status.Labels[KubeletLabels.PodUid].ShouldBe(pod.Metadata.Uid);
        status.Labels[KubeletLabels.ContainerName].ShouldBe("counter");
        status.Annotations[KubeletLabels.ContainerHash].ShouldBe(PodCriConfig.Hash(pod.Spec.Containers[0]));
        status.Annotations[KubeletLabels.ContainerRestartCount].ShouldBe("0");
        status.Annotations[KubeletLabels.ContainerTerminationMessagePath].ShouldBe("/dev/termination-log");
        status.Annotations[KubeletLabels.ContainerTerminationMessagePolicy].ShouldBe("File");
        status.Annotations[KubeletLabels.PodTerminationGracePeriod].ShouldBe("2");
        status.Annotations[KubeletLabels.ContainerPorts].ShouldContain("\"containerPort\":8080");
        status.LogPath.ShouldBe(Path.Combine(KubeletPodConfig.LogDirectory(TestPods.Namespace, pod.Metadata.Name!, pod.Metadata.Uid!), "counter", "0.log"));
        status.Metadata.Attempt.ShouldBe(0u);

        var sandbox = await cri.PodSandboxStatusAsync(started.SandboxId, cts.Token);
        sandbox.Metadata.Uid.ShouldBe(pod.Metadata.Uid);
        sandbox.Labels["app"].ShouldBe("counter");
        sandbox.Labels[KubeletLabels.PodUid].ShouldBe(pod.Metadata.Uid);
        sandbox.Annotations["podmigrate.test/case"].ShouldBe("labels");
        sandbox.Annotations[KubeletLabels.ConfigSource].ShouldBe("api");
        sandbox.Linux.Namespaces.Options.Network.ShouldBe(NamespaceMode.Pod);
        sandbox.Linux.Namespaces.Options.Pid.ShouldBe(NamespaceMode.Container);
        File.Exists(status.LogPath).ShouldBeTrue("the runtime writes the container log where kubelet asked");
    }

    [Fact(Timeout = 120_000)]
    public async Task Removing_a_pod_leaves_no_sandbox_container_log_directory_or_cgroup()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = TestPods.Counter(cluster.Image("counter"), "remove");
        var runner = cluster.Runner(NodeA);
        var started = await runner.RunAsync(pod, cts.Token);
        var uid = pod.Metadata.Uid!;
        Directory.Exists($"/sys/fs/cgroup/cpu/kubepods/besteffort/pod{uid}").ShouldBeTrue("the pod's cgroup exists while it runs");

        (await runner.RemoveAsync(TestPods.Namespace, pod.Metadata.Name!, TimeSpan.FromSeconds(2), cts.Token)).ShouldBeTrue();

        var cri = cluster.Cri(NodeA).Runtime;
        var byUid = new PodSandboxFilter();
        byUid.LabelSelector[KubeletLabels.PodUid] = uid;
        (await cri.ListPodSandboxAsync(byUid, cts.Token)).ShouldBeEmpty();
        var containersByUid = new ContainerFilter();
        containersByUid.LabelSelector[KubeletLabels.PodUid] = uid;
        (await cri.ListContainersAsync(containersByUid, cts.Token)).ShouldBeEmpty();
        Directory.Exists(KubeletPodConfig.LogDirectory(TestPods.Namespace, pod.Metadata.Name!, uid)).ShouldBeFalse();
        Directory.Exists($"/sys/fs/cgroup/cpu/kubepods/besteffort/pod{uid}").ShouldBeFalse();
        File.ReadAllText("/proc/self/mountinfo").ShouldNotContain(started.SandboxId);
        (await runner.RemoveAsync(TestPods.Namespace, pod.Metadata.Name!, null, cts.Token)).ShouldBeFalse("a second removal finds nothing");
    }

    [Fact(Timeout = 120_000)]
    public async Task Running_the_same_pod_twice_is_AlreadyExists_and_exec_into_a_missing_pod_is_NotFound()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = TestPods.Counter(cluster.Image("counter"), "twice");
        await using var _ = await RunAsync(NodeA, pod, cts.Token);
        var again = TestPods.Counter(cluster.Image("counter"), "twice");
        again.Metadata.Name = pod.Metadata.Name;

        var duplicate = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeA).RunAsync(again, cts.Token));
        duplicate.Kind.ShouldBe(ErrorKind.AlreadyExists);

        var missing = await Should.ThrowAsync<PodMigrateException>(
            () => cluster.Runner(NodeA).ExecAsync(TestPods.Namespace, "no-such-pod", null, ["true"], TimeSpan.FromSeconds(5), cts.Token));
        missing.Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact(Timeout = 120_000)]
    public async Task A_pod_whose_image_does_not_exist_fails_to_start_and_leaves_no_sandbox()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = TestPods.Counter($"{cluster.Registry}/podmigrate/does-not-exist:1", "noimage");

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeA).RunAsync(pod, cts.Token));
        error.Message.ShouldContain("does-not-exist");
        (await cluster.Runner(NodeA).GetAsync(TestPods.Namespace, pod.Metadata.Name!, cts.Token)).ShouldBeNull();
    }

    private async Task<PodCleanup> RunAsync(string node, V1Pod pod, CancellationToken cancellationToken)
    {
        await cluster.Runner(node).RunAsync(pod, cancellationToken);
        return new PodCleanup(cluster.Runner(node), pod);
    }

    /// <summary>The first value the counter wrote (it writes /tmp/count after its first tick, so early reads may find no file yet).</summary>
    private Task<long> ReadCountAsync(string node, V1Pod pod, CancellationToken cancellationToken)
        => WaitForCountAboveAsync(node, pod, long.MinValue, cancellationToken);

    /// <summary>Polls with backoff (bounded by the token) until the counter passes <paramref name="floor"/>; it ticks every 100 ms.</summary>
    private async Task<long> WaitForCountAboveAsync(string node, V1Pod pod, long floor, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var result = await cluster.Runner(node).ExecAsync(TestPods.Namespace, pod.Metadata.Name!, "counter", ["cat", "/tmp/count"], TimeSpan.FromSeconds(10), cancellationToken);
            if (result.ExitCode == 0 && long.Parse(result.Stdout.Trim(), CultureInfo.InvariantCulture) is var value && value > floor)
            {
                return value;
            }
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 2000));
        }
    }

    private static bool InSubnet(string ip, string cidr)
    {
        var network = IPNetwork.Parse(cidr);
        return network.Contains(IPAddress.Parse(ip));
    }

    /// <summary>Removes the pod when the test ends, with its own time budget (the test's token may be what ended it).</summary>
    private sealed class PodCleanup(KubeletPodRunner runner, V1Pod pod) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await runner.RemoveAsync(TestPods.Namespace, pod.Metadata.Name!, TimeSpan.FromSeconds(2), cts.Token);
        }
    }
}
