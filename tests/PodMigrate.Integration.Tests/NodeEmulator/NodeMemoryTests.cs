using k8s.Models;
using PodMigrate.Agent.Memory;
using PodMigrate.Kube.Models;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Nodes;
using PodMigrate.NodeEmulator.Pods;

namespace PodMigrate.Integration.Tests.NodeEmulator;

/// <summary>Node memory that is enforced (--node-memory) and what the agent reads of it: the pure parts.</summary>
[Trait("Category", "Unit")]
public sealed class NodeMemoryTests
{
    [Fact]
    public void The_node_cgroup_is_created_and_capped_in_the_v1_memory_hierarchy()
        => NodeMemoryCgroup.Plan("/podmigrate/node-a", 768L << 20, cgroupV2: false, "/cg").ShouldBe(new NodeMemoryCgroup.Step[]
        {
            new NodeMemoryCgroup.Step("/cg/memory/podmigrate/node-a", null),
            new("/cg/memory/podmigrate/node-a/memory.limit_in_bytes", "805306368"),
        });

    [Fact]
    public void On_v2_the_memory_controller_is_enabled_down_the_path_and_memory_max_set()
        => NodeMemoryCgroup.Plan("/pm/node-b", 1L << 30, cgroupV2: true, "/cg").ShouldBe(new NodeMemoryCgroup.Step[]
        {
            new NodeMemoryCgroup.Step("/cg/cgroup.subtree_control", "+memory"),
            new NodeMemoryCgroup.Step("/cg/pm", null),
            new NodeMemoryCgroup.Step("/cg/pm/cgroup.subtree_control", "+memory"),
            new NodeMemoryCgroup.Step("/cg/pm/node-b", null),
            new NodeMemoryCgroup.Step("/cg/pm/node-b/cgroup.subtree_control", "+memory"),
            new("/cg/pm/node-b/memory.max", "1073741824"),
        });

    [Theory]
    [InlineData("/")]
    [InlineData("/a/../b")]
    public void A_path_outside_the_hierarchy_is_refused(string cgroup)
        => Should.Throw<PodMigrate.Core.Errors.PodMigrateException>(() => NodeMemoryCgroup.Plan(cgroup, 1L << 30, cgroupV2: false));

    [Fact]
    public void Pods_go_under_the_node_cgroup_only_when_there_is_one()
    {
        KubeletPodConfig.PodCgroupParent("", "u1").ShouldBe("/kubepods/besteffort/podu1");
        KubeletPodConfig.PodCgroupParent("/pm-s4/node-a/", "u1").ShouldBe("/pm-s4/node-a/kubepods/besteffort/podu1");
    }

    [Fact]
    public void The_enforced_memory_is_the_nodes_capacity_and_allocatable()
    {
        var host = new HostFacts(2, 24L << 20, 1L << 20, "m", "s", "b", "k", "os", "amd64");
        host.Capacity(110)["memory"].ShouldEndWith("Ki");
        host.Allocatable(110)["memory"].ShouldBe($"{(24L << 20) - 100 * 1024}Ki", "kubelet's eviction reserve held back");
        var enforced = host with { EnforcedMemoryBytes = 768L << 20 };
        new ResourceQuantity(enforced.Capacity(110)["memory"]).ToInt64().ShouldBe(768L << 20);
        new ResourceQuantity(enforced.Allocatable(110)["memory"]).ToInt64().ShouldBe(768L << 20);
    }

    [Theory]
    [InlineData("OOMKilled", 137, "OOMKilled")]
    [InlineData("", 137, "Error")]
    [InlineData(null, 0, "Completed")]
    public void A_terminated_container_reports_the_runtimes_reason_as_kubelet_does(string? runtime, int exitCode, string reason)
        => PodStatusBuilder.TerminatedReason(runtime, exitCode).ShouldBe(reason);

    [Fact]
    public void The_agent_reads_cgroup_and_proc_memory_files()
    {
        CgroupMemoryFiles.ParseKeyValues("cache 10\ntotal_inactive_file 4096\noom_kill 2\n")["total_inactive_file"].ShouldBe(4096);
        var meminfo = CgroupMemoryFiles.ParseMemInfo("MemTotal:       1000 kB\nMemAvailable:    250 kB\nHugePages_Total:       0\n");
        meminfo["MemTotal"].ShouldBe(1024000);
        meminfo["MemAvailable"].ShouldBe(256000);
        meminfo["HugePages_Total"].ShouldBe(0);
        CgroupMemoryFiles.ParsePressure("some avg10=1.50 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=1\n")
            .ShouldBe((Some: 1.5, Full: 0.25));
        CgroupMemoryFiles.ParsePressure("").ShouldBe((Some: -1.0, Full: -1.0));
        CgroupMemoryFiles.WorkingSet(100, 30).ShouldBe(70);
        CgroupMemoryFiles.WorkingSet(10, 30).ShouldBe(0);
    }
}
