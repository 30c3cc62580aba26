using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Processes;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Cluster;

/// <summary>
/// scripts/cluster.sh up/down on a second, private instance (its own run and state dirs, node names, bridges
/// cni-lc-*, subnets 10.89.x, agent ports 7540+) so that taking it down never disturbs the shared cluster the other
/// tests use. It borrows the shared instance's registry (--external-registry), which the LocalCluster fixture makes
/// sure is up. It checks what `down` promises: no processes, mounts, network namespaces, bridges or iptables rules left.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class ClusterLifecycleTests(LocalCluster shared)
{
    private const string BridgePrefix = "cni-lc-";
    private const string SubnetBase = "10.89";

    // Three `up`s (two start containerd 2.1 and 1.7, agents, emulators and a control plane) and a `down`: well under 5 min on
    // an idle machine (CI), over 5 min at load average 50-70 (a fresh-clone run beside other builds timed out at 5 min).
    [Fact(Timeout = 720_000)]
    public async Task Up_is_idempotent_recovers_from_a_crash_and_down_leaves_nothing_behind()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(11.5));
        var id = Guid.NewGuid().ToString("N")[..6];
        var instance = new Instance(id);
        var sharedBridges = shared.Info.Nodes.Where(n => Directory.Exists($"/sys/class/net/{n.Bridge}")).Select(n => n.Bridge).ToList();
        try
        {
            // up, then up again: the same containerd keeps running.
            var cluster = await instance.UpAsync(cts.Token);
            cluster.Nodes.Count.ShouldBe(2);
            var nodeA = cluster.Nodes[0];
            nodeA.Name.ShouldBe($"lc{id}-a");
            nodeA.Bridge.ShouldBe($"{BridgePrefix}a");
            var pid = instance.ContainerdPid(nodeA.Name);
            await instance.UpAsync(cts.Token);
            instance.ContainerdPid(nodeA.Name).ShouldBe(pid, "a second `up` must not restart a healthy node");

            var first = await RunCounterAsync(nodeA, cts.Token);
            IPNetwork.Parse(nodeA.Subnet).Contains(IPAddress.Parse(first.Ip!)).ShouldBeTrue();

            // A crash: containerd killed, its shim and containers still running. `up` cleans that up and starts afresh.
            Process.GetProcessById(pid).Kill();
            await instance.UpAsync(cts.Token);
            instance.ContainerdPid(nodeA.Name).ShouldNotBe(pid);
            // Only the fresh containerd daemons, the nodes' agents and emulators and the control plane name the run dir: the crashed node's shims are gone.
            ProcessesMentioning(instance.RunDir).ShouldBe(
                cluster.Nodes.Select(n => instance.ContainerdPid(n.Name)).Concat(cluster.Nodes.SelectMany(n => instance.AgentPids(n.Name))).Concat(instance.ControlPlanePids()),
                ignoreOrder: true);
            Directory.Exists(KubeletPodConfig.LogDirectory(first.Namespace, first.Name, first.Uid)).ShouldBeFalse("the crashed pod's log directory is removed by the clean-up");
            var second = await RunCounterAsync(nodeA, cts.Token);
            second.SandboxId.ShouldNotBe(first.SandboxId);

            // down with a pod running: nothing of the instance may remain.
            (await instance.RunAsync(["down"], cts.Token)).EnsureSuccess();
            Directory.Exists(instance.RunDir).ShouldBeFalse();
            File.ReadAllText("/proc/self/mountinfo").ShouldNotContain(instance.RunDir);
            File.ReadAllText("/proc/self/mountinfo").ShouldNotContain(instance.StateDir);
            ProcessesMentioning(instance.RunDir).ShouldBeEmpty();
            Directory.Exists($"/sys/class/net/{BridgePrefix}a").ShouldBeFalse();
            Directory.Exists($"/sys/class/net/{BridgePrefix}b").ShouldBeFalse();
            var rule = await ProcessRunner.RunAsync(
                new ProcessSpec("iptables", ["-C", "FORWARD", "-i", $"{BridgePrefix}+", "-o", $"{BridgePrefix}+", "-m", "comment", "--comment", $"podmigrate:{instance.RunDir}", "-j", "ACCEPT"]),
                cts.Token);
            rule.ExitCode.ShouldNotBe(0, "the FORWARD rule `up` added is removed");
            Directory.Exists($"/sys/fs/cgroup/cpu/kubepods/besteffort/pod{first.Uid}").ShouldBeFalse("the crashed pod's cgroup is removed by the clean-up");
            Directory.Exists($"/sys/fs/cgroup/cpu/kubepods/besteffort/pod{second.Uid}").ShouldBeFalse();

            Directory.Exists(KubeletPodConfig.LogDirectory(second.Namespace, second.Name, second.Uid)).ShouldBeFalse();

            // The shared cluster did not notice.
            sharedBridges.ShouldAllBe(bridge => Directory.Exists($"/sys/class/net/{bridge}"));
            foreach (var node in shared.Info.Nodes)
            {
                (await shared.Cri(node.Name).Runtime.VersionAsync(cts.Token)).RuntimeName.ShouldBe("containerd");
            }
            File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim().ShouldBe("1", "the shared cluster still needs forwarding");
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            await instance.RunAsync(["down", "--purge"], cleanup.Token);
            instance.DeleteDirectories();
        }

        // A `down` after the instance is gone has nothing recorded: it must not touch anything, the shared bridges included.
        using (var again = new CancellationTokenSource(TimeSpan.FromMinutes(1)))
        {
            (await instance.RunAsync(["down"], again.Token)).EnsureSuccess();
            instance.DeleteDirectories();
        }
        sharedBridges.ShouldAllBe(bridge => Directory.Exists($"/sys/class/net/{bridge}"));
    }

    private static async Task<NodePod> RunCounterAsync(ClusterNode node, CancellationToken cancellationToken)
    {
        using var cri = CriConnection.ForUnixSocket(node.ContainerdSocket);
        var runner = new KubeletPodRunner(cri, NullLogger<KubeletPodRunner>.Instance);
        var pod = TestPods.Counter("localhost:5000/podmigrate/counter:1", "lifecycle");
        var started = await runner.RunAsync(pod, cancellationToken);
        started.Containers.ShouldHaveSingleItem().State.ShouldBe("Running");
        started.Ip.ShouldNotBeNull();
        return started;
    }

    /// <summary>PIDs of processes whose command line names <paramref name="text"/> (daemons, shims: all carry their paths).</summary>
    private static List<int> ProcessesMentioning(string text)
    {
        var pids = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }
            try
            {
                if (File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Contains(text, StringComparison.Ordinal))
                {
                    pids.Add(pid);
                }
            }
            catch (IOException)
            {
                // exited while we looked
            }
        }
        return pids;
    }

    private sealed class Instance(string id)
    {
        public string RunDir { get; } = $"/run/pm-lc-{id}";

        public string StateDir { get; } = $"/var/lib/pm-lc-{id}";

        private string LogDir { get; } = $"/var/log/pm-lc-{id}";

        public async Task<ClusterInfo> UpAsync(CancellationToken cancellationToken)
        {
            var result = await RunAsync(
                ["up", "--nodes", "2", "--name-prefix", $"lc{id}-", "--bridge-prefix", BridgePrefix, "--subnet-base", SubnetBase, "--agent-port-base", "7540", "--apiserver-port", "6543", "--external-registry"],
                cancellationToken);
            result.Succeeded.ShouldBeTrue($"cluster.sh up failed ({result.ExitCode}):\n{result.StandardError}");
            return ClusterInfo.Read(Path.Combine(RunDir, "cluster.json"));
        }

        public int ContainerdPid(string node)
            => int.Parse(File.ReadAllText(Path.Combine(RunDir, node, "containerd.pid")).Trim(), CultureInfo.InvariantCulture);

        /// <summary>The node's agent and node emulator, when the CLI that `up` ran has those verbs.</summary>
        public IEnumerable<int> AgentPids(string node) => Pids(Path.Combine(RunDir, node, "agent.pid"), Path.Combine(RunDir, node, "emulator.pid"));

        /// <summary>The API server and the controller, when the CLI that `up` ran has those verbs.</summary>
        public IEnumerable<int> ControlPlanePids() => Pids(Path.Combine(RunDir, "apiserver.pid"), Path.Combine(RunDir, "controller.pid"));

        private static IEnumerable<int> Pids(params string[] files)
            => files.Where(File.Exists).Select(f => int.Parse(File.ReadAllText(f).Trim(), CultureInfo.InvariantCulture));

        public Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
            => ClusterScript.RunAsync(arguments, new Dictionary<string, string?>
            {
                ["PODMIGRATE_RUN_DIR"] = RunDir,
                ["PODMIGRATE_STATE_DIR"] = StateDir,
                ["PODMIGRATE_LOG_DIR"] = LogDir,
                ["PODMIGRATE_SHARE"] = null,
            }, cancellationToken);

        public void DeleteDirectories()
        {
            foreach (var dir in new[] { StateDir, LogDir })
            {
                if (Directory.Exists(dir))
                {
                    Directory.Delete(dir, recursive: true);
                }
            }
            File.Delete($"{RunDir}.lock");
        }
    }
}
