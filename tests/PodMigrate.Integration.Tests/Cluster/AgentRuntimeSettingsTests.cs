using System.Globalization;
using System.Text.Json;
using PodMigrate.Kube.Serialization;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Cluster;

/// <summary>
/// The settings that keep an agent's memory down (README, The agent's memory) are environment variables and runtime
/// options, easy to lose without any test failing: the local cluster's agents must run with every variable the
/// DaemonSet gives its agent container, with invariant globalization (no ICU mapped) and the workstation GC.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
public sealed class AgentRuntimeSettingsTests(LocalCluster cluster)
{
    [Fact(Timeout = 30_000)]
    public async Task Local_agents_run_with_the_daemonsets_environment_and_runtime_options()
    {
        var deployed = await DaemonSetAgentEnvironmentAsync();
        deployed.ShouldContainKey("MALLOC_ARENA_MAX");

        foreach (var node in cluster.Info.Nodes)
        {
            var pidFile = Path.Combine(cluster.Info.RunDir, node.Name, "agent.pid");
            File.Exists(pidFile).ShouldBeTrue($"{node.Name}: no agent ({pidFile})");
            var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), CultureInfo.InvariantCulture);

            var environment = (await File.ReadAllTextAsync($"/proc/{pid}/environ")).Split('\0', StringSplitOptions.RemoveEmptyEntries)
                .Select(entry => entry.Split('=', 2))
                .Where(pair => pair.Length == 2)
                .GroupBy(pair => pair[0])
                .ToDictionary(g => g.Key, g => g.Last()[1]);
            foreach (var (name, value) in deployed)
            {
                environment.GetValueOrDefault(name).ShouldBe(value, $"{node.Name}'s agent (pid {pid}): {name} as deploy/50-agent-daemonset.yaml sets it");
            }

            // The CLI's apphost (`podmigrate agent`) reads its runtime options from podmigrate.runtimeconfig.json beside it;
            // podmigrate-agent (NativeAOT, $PODMIGRATE_AGENT_BIN) has them compiled in and no such file.
            var executable = new FileInfo($"/proc/{pid}/exe").LinkTarget.ShouldNotBeNull();
            var runtimeConfig = executable + ".runtimeconfig.json";
            if (File.Exists(runtimeConfig))
            {
                using var config = JsonDocument.Parse(await File.ReadAllTextAsync(runtimeConfig));
                var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
                properties.GetProperty("System.Globalization.Invariant").GetBoolean().ShouldBeTrue(runtimeConfig);
                properties.GetProperty("System.GC.Server").GetBoolean().ShouldBeFalse(runtimeConfig);
            }

            var mapped = await File.ReadAllTextAsync($"/proc/{pid}/maps");
            mapped.ShouldNotContain("libicu", Case.Sensitive, $"{node.Name}'s agent (pid {pid}) maps ICU: invariant globalization is off");
        }
    }

    /// <summary>The literal environment variables of the agent container in deploy/50-agent-daemonset.yaml.</summary>
    private static async Task<Dictionary<string, string>> DaemonSetAgentEnvironmentAsync()
    {
        var path = Path.Combine(ClusterScript.RepositoryRoot, "deploy", "50-agent-daemonset.yaml");
        var document = KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(path), path).ShouldHaveSingleItem();
        using var json = JsonDocument.Parse(document);
        var agent = json.RootElement.GetProperty("spec").GetProperty("template").GetProperty("spec").GetProperty("containers")
            .EnumerateArray().Single(c => c.GetProperty("name").GetString() == "agent");
        return agent.GetProperty("env").EnumerateArray()
            .Where(e => e.TryGetProperty("value", out _))
            .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("value").GetString()!);
    }
}
