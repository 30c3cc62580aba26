using System.Text.Json;
using PodMigrate.Core.Processes;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>The agent's API called by a gRPC stack that is not ours: Debian's python3-grpcio.</summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class AgentGrpcioTests(LocalCluster cluster)
{
    private const string Python = "/usr/bin/python3";

    [Fact(Timeout = 120_000)]
    public async Task Python_grpcio_calls_the_agent_and_gets_its_answers_and_error_codes()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(110));
        if (!File.Exists(Python))
        {
            throw new InvalidOperationException($"{Python} is missing: install python3-grpcio (scripts/setup.sh)");
        }
        var layout = TestAgentLayout.ForNode("node-a", cluster.Info.Node("node-a").ContainerdSocket);
        try
        {
            await using var agent = await TestAgent.StartAsync(layout, cts.Token);
            var script = Path.Combine(AppContext.BaseDirectory, "Agent", "grpcio_agent_client.py");
            var run = (await ProcessRunner.RunAsync(new ProcessSpec(Python, [script, layout.Socket]) { Timeout = TimeSpan.FromSeconds(90) }, cts.Token)).EnsureSuccess();

            using var results = JsonDocument.Parse(run.StandardOutput);
            var info = results.RootElement.GetProperty("info");
            info.GetProperty("node").GetString().ShouldBe("node-a");
            info.GetProperty("containerd").GetString().ShouldStartWith("2.1");
            info.GetProperty("criu").GetString().ShouldStartWith("4.");
            info.GetProperty("codecs").EnumerateArray().Select(c => c.GetString()).ShouldBe(["zstd", "gzip", "none"]);
            results.RootElement.GetProperty("health").GetInt32().ShouldBe(1);
            var missing = results.RootElement.GetProperty("inspect_missing");
            missing.GetProperty("code").GetString().ShouldBe("NOT_FOUND");
            missing.GetProperty("details").GetString()!.ShouldContain("ck-not-there");
            var stream = results.RootElement.GetProperty("checkpoint_missing");
            stream.GetProperty("code").GetString().ShouldBe("NOT_FOUND");
            stream.GetProperty("details").GetString()!.ShouldContain("no-such-pod");
            results.ShouldServeHealthAndReflection();
        }
        finally
        {
            Directory.Delete(layout.Directory, recursive: true);
        }
    }
}

internal static class GrpcioResults
{
    /// <summary>grpc.health.v1 says SERVING for the server ("") and NOT_FOUND for an unknown service; reflection lists the API.</summary>
    public static void ShouldServeHealthAndReflection(this JsonDocument results)
    {
        results.RootElement.GetProperty("grpc_health").GetInt32().ShouldBe(1);
        results.RootElement.GetProperty("grpc_health_unknown_service").GetProperty("code").GetString().ShouldBe("NOT_FOUND");
        var reflection = results.RootElement.GetProperty("reflection");
        reflection.GetProperty("services").EnumerateArray().Select(s => s.GetString()).ShouldBe(
            ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "podmigrate.agent.v1.AgentService"],
            ignoreOrder: true);
    }
}
