using k8s.Models;
using PodMigrate.Kube.Models;
using PodMigrate.NodeEmulator.Pods;

namespace PodMigrate.Integration.Tests.NodeEmulator;

/// <summary>kubelet's getPhase, as the emulator computes it from its containers' states.</summary>
[Trait("Category", "Unit")]
public sealed class PodPhaseTests
{
    [Theory]
    [InlineData("Always", "waiting", "running", "Pending")]
    [InlineData("Always", "running", "running", "Running")]
    [InlineData("Always", "running", "exited:0", "Running")]
    [InlineData("Always", "exited:0", "exited:0", "Running")]
    [InlineData("Always", "crashloop", "running", "Running")]
    [InlineData("Never", "exited:0", "exited:0", "Succeeded")]
    [InlineData("Never", "exited:0", "exited:1", "Failed")]
    [InlineData("Never", "running", "exited:1", "Running")]
    [InlineData("OnFailure", "exited:0", "exited:0", "Succeeded")]
    [InlineData("OnFailure", "exited:0", "crashloop", "Running")]
    [InlineData("OnFailure", "exited:0", "exited:2", "Running")]
    [InlineData("Always", "running", "missing", "Pending")]
    public void Phase_follows_kubelet(string restartPolicy, string first, string second, string phase)
    {
        var spec = new V1PodSpec { RestartPolicy = restartPolicy, Containers = [new V1Container { Name = "a" }, new V1Container { Name = "b" }] };
        V1ContainerStatus?[] statuses = [Status("a", first), Status("b", second)];

        PodStatusBuilder.Phase(spec, [.. statuses.OfType<V1ContainerStatus>()], podIsTerminal: false).ShouldBe(phase);
    }

    [Theory]
    [InlineData("exited:0", "exited:0", "Succeeded")]
    [InlineData("exited:0", "exited:137", "Failed")]
    [InlineData("crashloop", "exited:0", "Failed")]
    public void A_terminating_pod_with_every_container_stopped_ends_whatever_its_restart_policy(string first, string second, string phase)
    {
        var spec = new V1PodSpec { RestartPolicy = "Always", Containers = [new V1Container { Name = "a" }, new V1Container { Name = "b" }] };

        PodStatusBuilder.Phase(spec, [Status("a", first)!, Status("b", second)!], podIsTerminal: true).ShouldBe(phase);
    }

    private static V1ContainerStatus? Status(string name, string state) => state switch
    {
        "missing" => null,
        "waiting" => new() { Name = name, State = new() { Waiting = new() { Reason = "ContainerCreating" } } },
        "running" => new() { Name = name, State = new() { Running = new() } },
        "crashloop" => new()
        {
            Name = name,
            State = new() { Waiting = new() { Reason = "CrashLoopBackOff" } },
            LastState = new() { Terminated = new() { ExitCode = 1 } },
        },
        _ when state.StartsWith("exited:", StringComparison.Ordinal) => new()
        {
            Name = name,
            State = new() { Terminated = new() { ExitCode = int.Parse(state["exited:".Length..], System.Globalization.CultureInfo.InvariantCulture) } },
        },
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };
}
