using k8s.Models;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Models;
using PodMigrate.NodeEmulator.Pods;

namespace PodMigrate.Integration.Tests.NodeEmulator;

/// <summary>
/// The node emulator's decisions (kubelet's computePodActions) from a pod, what the runtime has of it and the clock,
/// without CRI: what the pod worker then performs.
/// </summary>
[Trait("Category", "Unit")]
public sealed class PodActionsTests
{
    private static readonly TimeSpan Initial = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Max = TimeSpan.FromMinutes(5);
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 3, 0, 0, TimeSpan.Zero);

    private readonly KeyedBackoff _backoff = new(Initial, Max, TimeProvider.System);

    [Fact]
    public void A_new_pod_gets_its_first_sandbox_and_every_container_its_first_start()
    {
        var actions = PodActions.Compute(NewPod("Always", "app", "sidecar"), new PodObservation(), _backoff, Now);

        actions.Step.ShouldBe(PodStep.Run);
        actions.Sandbox.ShouldNotBeNull().Step.ShouldBe(SandboxStep.Create);
        actions.Sandbox.Attempt.ShouldBe(0u);
        actions.Sandbox.Lost.ShouldBeNull();
        actions.Containers.Select(c => (c.Name, c.Step, c.Attempt, c.StartBackedOff))
            .ShouldBe([("app", ContainerStep.Start, 0u, false), ("sidecar", ContainerStep.Start, 0u, false)]);
    }

    [Fact]
    public void A_running_pod_in_its_ready_sandbox_is_left_alone()
    {
        var observed = Running("sb1", attempt: 0, V1Container("c1", "sb1", "app", 0, ObservedContainerState.Running));

        var actions = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now);

        actions.Sandbox!.Step.ShouldBe(SandboxStep.Keep);
        actions.Sandbox.Id.ShouldBe("sb1");
        actions.Sandbox.Remove.ShouldBeEmpty();
        actions.Containers.ShouldHaveSingleItem().Step.ShouldBe(ContainerStep.Running);
    }

    [Theory]
    [InlineData("Always", 0, "Restart")]
    [InlineData("Always", 3, "Restart")]
    [InlineData(null, 0, "Restart")]
    [InlineData("OnFailure", 0, "Finished")]
    [InlineData("OnFailure", 3, "Restart")]
    [InlineData("Never", 0, "Finished")]
    [InlineData("Never", 3, "Finished")]
    public void An_exited_container_is_restarted_as_the_restart_policy_says(string? restartPolicy, int exitCode, string expected)
    {
        var step = Enum.Parse<ContainerStep>(expected);
        var observed = Running("sb1", attempt: 0, Exited("c1", "sb1", "app", 0, exitCode, Now.AddSeconds(-1)));

        var action = PodActions.Compute(NewPod(restartPolicy, "app"), observed, _backoff, Now).Containers.ShouldHaveSingleItem();

        action.Step.ShouldBe(step);
        if (step == ContainerStep.Restart)
        {
            action.Attempt.ShouldBe(1u);
            action.FinishedAt.ShouldBe(Now.AddSeconds(-1));
        }
    }

    [Fact]
    public void A_restart_removes_the_attempts_before_the_last_exited_one_and_starts_the_next()
    {
        var observed = Running("sb1", attempt: 0,
            Exited("c0", "sb1", "app", 0, 1, Now.AddSeconds(-90)),
            Exited("c2", "sb1", "app", 2, 1, Now.AddSeconds(-30)),
            Exited("c1", "sb1", "app", 1, 1, Now.AddSeconds(-60)));

        var action = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now).Containers.ShouldHaveSingleItem();

        action.Step.ShouldBe(ContainerStep.Restart);
        action.Attempt.ShouldBe(3u);
        action.Remove.ShouldBe(["c1", "c0"]);
    }

    [Fact]
    public void A_container_that_exits_again_within_its_back_off_waits_in_CrashLoopBackOff_until_the_back_off_passes()
    {
        var pod = NewPod("Always", "app");
        var finished = Now.AddSeconds(-4);
        _backoff.Next(PodActions.RestartKey("app"), Now.AddSeconds(-20)); // the restart before: 10 s
        _backoff.Next(PodActions.RestartKey("app"), finished); // this one: 20 s from its exit
        var observed = Running("sb1", attempt: 0, Exited("c1", "sb1", "app", 1, 2, finished));

        var waiting = PodActions.Compute(pod, observed, _backoff, Now).Containers.ShouldHaveSingleItem();
        waiting.Step.ShouldBe(ContainerStep.CrashLoopBackOff);
        waiting.Message.ShouldBe("back-off 20s restarting failed container=app pod=p_ns(uid-1)");

        PodActions.Compute(pod, observed, _backoff, finished.AddSeconds(19)).Containers.Single().Step.ShouldBe(ContainerStep.CrashLoopBackOff);
        var due = PodActions.Compute(pod, observed, _backoff, finished.AddSeconds(20)).Containers.Single();
        due.Step.ShouldBe(ContainerStep.Restart);
        due.Attempt.ShouldBe(2u);
        _backoff.Get(PodActions.RestartKey("app")).ShouldBe(TimeSpan.FromSeconds(20), "deciding reads the back-off and changes nothing");
    }

    [Fact]
    public void A_start_that_failed_less_than_its_back_off_ago_waits()
    {
        _backoff.Next(PodActions.StartKey("app"), Now.AddSeconds(-5));

        var actions = PodActions.Compute(NewPod("Always", "app", "sidecar"), Running("sb1", 0), _backoff, Now);

        actions.Containers.Select(c => (c.Name, c.Step, c.StartBackedOff))
            .ShouldBe([("app", ContainerStep.Start, true), ("sidecar", ContainerStep.Start, false)]);
        PodActions.Compute(NewPod("Always", "app"), Running("sb1", 0), _backoff, Now.AddSeconds(5)).Containers.Single().StartBackedOff.ShouldBeFalse();
    }

    [Fact]
    public void A_deleted_pod_is_killed_within_its_deletion_grace_period_then_reported_and_deleted_for_good()
    {
        var pod = NewPod("Always", "app");
        pod.Metadata.DeletionTimestamp = Now.UtcDateTime;
        pod.Metadata.DeletionGracePeriodSeconds = 7;
        pod.Spec.TerminationGracePeriodSeconds = 60;
        var observed = Running("sb1", 0,
            V1Container("c1", "sb1", "app", 1, ObservedContainerState.Running),
            Exited("c0", "sb1", "app", 0, 1, Now.AddSeconds(-30))) with
        {
            Sandboxes = [new ObservedSandbox("sb1", true, 1), new ObservedSandbox("sb0", false, 0)],
        };

        var actions = PodActions.Compute(pod, observed, _backoff, Now);

        actions.Step.ShouldBe(PodStep.Kill);
        actions.GracePeriod.ShouldBe(TimeSpan.FromSeconds(7));
        actions.ContainersToStop.ShouldBe(["c1"]);
        actions.SandboxesToRemove.ShouldBe(["sb1", "sb0"]);
        actions.ReportFinalStatus.ShouldBeTrue();
        actions.DeleteFromApi.ShouldBeTrue();
    }

    [Fact]
    public void A_pod_gone_from_the_API_server_is_killed_within_its_own_grace_period_and_nothing_is_reported()
    {
        var pod = NewPod("Always", "app");
        pod.Spec.TerminationGracePeriodSeconds = 3;
        var observed = Running("sb1", 0, V1Container("c1", "sb1", "app", 0, ObservedContainerState.Running)) with { Gone = true };

        var actions = PodActions.Compute(pod, observed, _backoff, Now);

        actions.Step.ShouldBe(PodStep.Kill);
        actions.GracePeriod.ShouldBe(TimeSpan.FromSeconds(3));
        actions.ContainersToStop.ShouldBe(["c1"]);
        actions.ReportFinalStatus.ShouldBeFalse();
        actions.DeleteFromApi.ShouldBeFalse();
    }

    [Fact]
    public void A_deleted_pod_that_never_ran_here_has_no_final_status_to_report()
    {
        var pod = NewPod("Always", "app");
        pod.Metadata.DeletionTimestamp = Now.UtcDateTime;

        var actions = PodActions.Compute(pod, new PodObservation(), _backoff, Now);

        actions.Step.ShouldBe(PodStep.Kill);
        actions.GracePeriod.ShouldBe(TimeSpan.FromSeconds(30), "no grace period anywhere: kubelet's default");
        actions.ReportFinalStatus.ShouldBeFalse();
        actions.DeleteFromApi.ShouldBeTrue();
    }

    [Fact]
    public void A_sandbox_stopped_underneath_is_replaced_by_the_next_attempt_and_every_container_starts_again_in_it()
    {
        var observed = new PodObservation
        {
            Sandboxes = [new ObservedSandbox("sb1", Ready: false, Attempt: 1)],
            Containers = [Exited("c1", "sb1", "app", 2, 137, Now.AddSeconds(-1))],
            SandboxId = "sb1",
            SandboxAttempt = 1,
            StartedAttempts = new Dictionary<string, uint> { ["app"] = 2 },
            Reported = true,
        };

        var sandbox = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now);

        sandbox.Sandbox!.Step.ShouldBe(SandboxStep.Create);
        sandbox.Sandbox.Lost.ShouldBe("sb1");
        sandbox.Sandbox.Remove.ShouldBe(["sb1"]);
        sandbox.Sandbox.Attempt.ShouldBe(2u);
        var start = sandbox.Containers.ShouldHaveSingleItem();
        start.Step.ShouldBe(ContainerStep.Start, "the old sandbox's containers go with it");
        start.Attempt.ShouldBe(3u);
    }

    [Fact]
    public void A_removed_sandbox_also_counts_as_changed_and_stale_sandboxes_raise_the_next_attempt()
    {
        var observed = new PodObservation
        {
            Sandboxes = [new ObservedSandbox("old", Ready: false, Attempt: 4)],
            SandboxId = "gone",
            SandboxAttempt = 2,
        };

        var action = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now).Sandbox!;

        action.Lost.ShouldBe("gone");
        action.Remove.ShouldBe(["old"]);
        action.Step.ShouldBe(SandboxStep.Create);
        action.Attempt.ShouldBe(5u);
        action.NewestAttempt.ShouldBe(4u);
    }

    [Fact]
    public void A_failed_sandbox_is_not_run_again_before_its_back_off_passes()
    {
        _backoff.Next(PodActions.SandboxKey, Now.AddSeconds(-3));

        var actions = PodActions.Compute(NewPod("Always", "app"), new PodObservation { SandboxAttempt = 0 }, _backoff, Now);

        actions.Step.ShouldBe(PodStep.Run);
        actions.Sandbox!.Step.ShouldBe(SandboxStep.WaitBackOff);
        actions.Containers.ShouldBeEmpty();
        var later = PodActions.Compute(NewPod("Always", "app"), new PodObservation { SandboxAttempt = 0 }, _backoff, Now.AddSeconds(8));
        later.Sandbox!.Step.ShouldBe(SandboxStep.Create);
        later.Sandbox.Attempt.ShouldBe(1u);
        later.Containers.ShouldHaveSingleItem().Step.ShouldBe(ContainerStep.Start);
    }

    [Fact]
    public void A_restored_container_running_in_a_sandbox_this_worker_did_not_make_is_adopted_not_started_again()
    {
        // A restarted emulator, or a pod whose container was restored from a checkpoint: the runtime already runs it.
        var observed = new PodObservation
        {
            Sandboxes = [new ObservedSandbox("old", Ready: false, Attempt: 0), new ObservedSandbox("restored", Ready: true, Attempt: 1)],
            Containers =
            [
                V1Container("c-restored", "restored", "app", 0, ObservedContainerState.Running),
                Exited("c-old", "old", "app", 0, 137, Now.AddSeconds(-60)),
            ],
        };

        var actions = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now);

        actions.Sandbox!.Step.ShouldBe(SandboxStep.Adopt);
        actions.Sandbox.Id.ShouldBe("restored");
        actions.Sandbox.Attempt.ShouldBe(1u);
        actions.Sandbox.Remove.ShouldBe(["old"]);
        var app = actions.Containers.ShouldHaveSingleItem();
        app.Step.ShouldBe(ContainerStep.Running);
        app.Attempt.ShouldBe(0u, "the restored container keeps its attempt (restart count)");
    }

    [Theory]
    [InlineData("Created")]
    [InlineData("Unknown")]
    public void A_container_created_but_never_started_is_replaced_by_the_next_attempt(string state)
    {
        var observed = Running("sb1", 0, V1Container("c1", "sb1", "app", 1, Enum.Parse<ObservedContainerState>(state)));

        var action = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now).Containers.ShouldHaveSingleItem();

        action.Step.ShouldBe(ContainerStep.Replace);
        action.Remove.ShouldBe(["c1"]);
        action.Attempt.ShouldBe(2u);
    }

    [Fact]
    public void A_finished_pod_does_nothing_and_one_that_finished_before_the_emulator_started_only_stops_its_sandboxes()
    {
        var pod = NewPod("Never", "app");
        PodActions.Compute(pod, Running("sb1", 0) with { Terminal = true }, _backoff, Now).Step.ShouldBe(PodStep.None);

        pod.Status = new V1PodStatus { Phase = "Succeeded" };
        PodActions.Compute(pod, Running("sb1", 0) with { SandboxId = null, Reported = false }, _backoff, Now).Step.ShouldBe(PodStep.StayFinished);
        PodActions.Compute(pod, Running("sb1", 0), _backoff, Now).Step.ShouldBe(PodStep.Run, "only a phase this worker did not report itself is taken as finished before");
    }

    [Fact]
    public void Init_containers_are_reported_unsupported_and_nothing_runs()
    {
        var pod = NewPod("Always", "app");
        pod.Spec.InitContainers = [new V1Container { Name = "init" }];

        var actions = PodActions.Compute(pod, new PodObservation(), _backoff, Now);

        actions.Step.ShouldBe(PodStep.Unsupported);
        actions.Message.ShouldNotBeNull().ShouldContain("init containers");
        actions.Sandbox.ShouldBeNull();
    }

    [Fact]
    public void Only_the_containers_of_the_sandbox_in_use_count()
    {
        var observed = Running("sb2", 1, Exited("c-old", "sb1", "app", 5, 1, Now.AddSeconds(-100)));

        var action = PodActions.Compute(NewPod("Always", "app"), observed, _backoff, Now).Containers.ShouldHaveSingleItem();

        action.Step.ShouldBe(ContainerStep.Start);
        action.Attempt.ShouldBe(0u);
    }

    private static V1Pod NewPod(string? restartPolicy, params string[] containers) => new()
    {
        Metadata = new V1ObjectMeta { Name = "p", NamespaceProperty = "ns", Uid = "uid-1" },
        Spec = new V1PodSpec { RestartPolicy = restartPolicy, Containers = [.. containers.Select(name => new V1Container { Name = name, Image = "img" })] },
    };

    /// <summary>The worker runs the pod in a ready sandbox it made, holding these containers.</summary>
    private static PodObservation Running(string sandboxId, uint attempt, params ObservedContainer[] containers) => new()
    {
        Sandboxes = [new ObservedSandbox(sandboxId, Ready: true, attempt)],
        Containers = containers,
        SandboxId = sandboxId,
        SandboxAttempt = attempt,
        Reported = true,
    };

    private static ObservedContainer V1Container(string id, string sandboxId, string name, uint attempt, ObservedContainerState state)
        => new(id, sandboxId, name, attempt, state, CreatedAt: attempt);

    private static ObservedContainer Exited(string id, string sandboxId, string name, uint attempt, int exitCode, DateTimeOffset finishedAt)
        => new(id, sandboxId, name, attempt, ObservedContainerState.Exited, CreatedAt: attempt, exitCode, finishedAt);
}
