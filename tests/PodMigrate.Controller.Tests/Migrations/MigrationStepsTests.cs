using PodMigrate.Agent.V1;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Migrations.Phases;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Tests.Migrations;

/// <summary>
/// The migration state machine's pure decisions, without an API server or agents: which step comes next from the status,
/// what the clone's health means in the verification, how a failed checkpoint goes on, and the status's bookkeeping.
/// </summary>
[Trait("Category", "Unit")]
public sealed class MigrationStepsTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 2, 0, 0, TimeSpan.Zero);
    private static readonly MigrationSettings Settings = MigrationSettings.From(new PodMigrationSpec { PodName = "p", Deadline = "1m", VerifyWindow = "10s" });

    [Theory]
    [InlineData(null, nameof(MigrationStep.Start))]
    [InlineData("", nameof(MigrationStep.Start))]
    [InlineData(MigrationPhase.Pending, nameof(MigrationStep.Start))]
    [InlineData(MigrationPhase.Prechecking, nameof(MigrationStep.Precheck))]
    [InlineData(MigrationPhase.Checkpointing, nameof(MigrationStep.Checkpoint))]
    [InlineData(MigrationPhase.Restoring, nameof(MigrationStep.Restore))]
    [InlineData(MigrationPhase.Verifying, nameof(MigrationStep.Restore))]
    [InlineData("Exploding", nameof(MigrationStep.Unknown))]
    public void Each_phase_has_its_step(string? phase, string expected)
        => MigrationSteps.Next(new PodMigrationStatus { Phase = phase, StartedAt = Now }, Settings, Now).ShouldBe(Enum.Parse<MigrationStep>(expected));

    [Theory]
    [InlineData(MigrationPhase.Restoring)]
    [InlineData(MigrationPhase.Verifying)]
    public void Once_the_clone_is_created_the_clone_is_verified(string phase)
        => MigrationSteps.Next(new PodMigrationStatus { Phase = phase, StartedAt = Now, CloneCreatedAt = Now }, Settings, Now).ShouldBe(MigrationStep.Verify);

    [Fact]
    public void A_rollback_once_begun_is_finished_before_anything_else_even_a_commit()
    {
        var status = new PodMigrationStatus { Phase = MigrationPhase.Verifying, StartedAt = Now.AddHours(-1), RollbackReason = "CloneFailed", Committed = true };
        MigrationSteps.Next(status, Settings, Now).ShouldBe(MigrationStep.Rollback);
    }

    [Fact]
    public void A_committed_migration_only_goes_forward_even_past_its_deadline()
    {
        var status = new PodMigrationStatus { Phase = MigrationPhase.Verifying, StartedAt = Now.AddHours(-1), Committed = true, CloneCreatedAt = Now };
        MigrationSteps.Next(status, Settings, Now).ShouldBe(MigrationStep.Commit);
    }

    [Theory]
    [InlineData(MigrationPhase.Checkpointing, nameof(MigrationStep.DeadlineExceeded))]
    [InlineData(MigrationPhase.Restoring, nameof(MigrationStep.DeadlineExceeded))]
    [InlineData(MigrationPhase.Verifying, nameof(MigrationStep.DeadlineExceeded))]
    // Nothing touched yet: the precheck decides (and may refuse) without a rollback.
    [InlineData(MigrationPhase.Prechecking, nameof(MigrationStep.Precheck))]
    [InlineData(MigrationPhase.Pending, nameof(MigrationStep.Start))]
    public void Past_the_deadline_a_migration_that_touched_the_source_rolls_back(string phase, string expected)
    {
        var status = new PodMigrationStatus { Phase = phase, StartedAt = Now - Settings.Deadline - TimeSpan.FromMilliseconds(1) };
        MigrationSteps.Next(status, Settings, Now).ShouldBe(Enum.Parse<MigrationStep>(expected));
        status.StartedAt = Now - Settings.Deadline;
        MigrationSteps.Next(status, Settings, Now).ShouldNotBe(MigrationStep.DeadlineExceeded);
    }

    [Fact]
    public void The_agents_get_what_is_left_of_the_deadline_but_at_least_five_seconds()
    {
        MigrationSteps.RemainingUntilDeadline(new PodMigrationStatus { StartedAt = Now.AddSeconds(-20) }, Settings, Now).ShouldBe(TimeSpan.FromSeconds(40));
        MigrationSteps.RemainingUntilDeadline(new PodMigrationStatus { StartedAt = Now.AddSeconds(-58) }, Settings, Now).ShouldBe(TimeSpan.FromSeconds(5));
        MigrationSteps.RemainingUntilDeadline(new PodMigrationStatus(), Settings, Now).ShouldBe(Settings.Deadline);
    }

    [Fact]
    public void A_checkpoint_sealed_early_goes_on_to_the_restore_and_awaits_its_publication_until_the_result_is_recorded()
    {
        var status = new PodMigrationStatus { Phase = MigrationPhase.Checkpointing, StartedAt = Now, CheckpointId = "c1", TargetNode = "node-b", FrozenAt = Now.AddSeconds(-1) };
        var stoppedAt = Now.AddMilliseconds(-700);

        status.RecordSealed(stoppedAt, Now);
        status.Checkpointed(Now);

        status.Phase.ShouldBe(MigrationPhase.Restoring);
        status.AwaitsPublication.ShouldBeTrue("the commit must wait for the archive to be durable");
        status.Condition("Checkpointed")!.Reason.ShouldBe("CheckpointSealed");
        status.SourceStoppedAt.ShouldBe(stoppedAt, "the downtime runs from the agent's freeze instant, known at the seal");

        status.RecordCheckpoint(new CheckpointResult { Wall = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            Frozen = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            FrozenAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(stoppedAt) }, Now.AddSeconds(3));
        status.AwaitsPublication.ShouldBeFalse();
        status.PublishedAt.ShouldBe(Now.AddSeconds(3));
    }

    [Fact]
    public void A_checkpoint_published_before_the_restore_never_awaits_its_publication()
    {
        var status = new PodMigrationStatus { Phase = MigrationPhase.Checkpointing, StartedAt = Now, CheckpointId = "c1" };
        status.RecordCheckpoint(new CheckpointResult { Wall = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            Frozen = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) }, Now);
        status.Checkpointed(Now);
        status.AwaitsPublication.ShouldBeFalse();
        status.Condition("Checkpointed")!.Reason.ShouldBe("CheckpointPublished");
    }

    [Fact]
    public void A_clone_that_becomes_ready_starts_the_window_at_the_kubelets_instant_never_in_the_future()
    {
        var status = new PodMigrationStatus { CloneCreatedAt = Now.AddSeconds(-3) };
        Verify(CloneHealthState.Ready, status, readySince: Now.AddSeconds(-1)).ShouldBe(new VerifyDecision(VerifyAction.FirstReady, ReadyAt: Now.AddSeconds(-1)));
        Verify(CloneHealthState.Ready, status, readySince: Now.AddSeconds(5)).ShouldBe(new VerifyDecision(VerifyAction.FirstReady, ReadyAt: Now));
        Verify(CloneHealthState.Ready, status, readySince: null).ShouldBe(new VerifyDecision(VerifyAction.FirstReady, ReadyAt: Now));
    }

    [Fact]
    public void A_ready_clone_is_verified_once_it_stayed_ready_through_the_window()
    {
        var status = new PodMigrationStatus { CloneCreatedAt = Now.AddSeconds(-30), CloneReadyAt = Now.AddSeconds(-9.8) };
        // Looked at again no later than the window's end, and no later than the poll interval.
        Verify(CloneHealthState.Ready, status).ShouldBe(new VerifyDecision(VerifyAction.Wait, Delay: TimeSpan.FromMilliseconds(200)));
        status.CloneReadyAt = Now.AddSeconds(-5);
        Verify(CloneHealthState.Ready, status).ShouldBe(new VerifyDecision(VerifyAction.Wait, Delay: TimeSpan.FromMilliseconds(500)));
        status.CloneReadyAt = Now.AddSeconds(-10);
        Verify(CloneHealthState.Ready, status).Action.ShouldBe(VerifyAction.Verified);
    }

    [Fact]
    public void A_clone_that_fails_loses_readiness_or_never_gets_ready_rolls_back()
    {
        Verify(CloneHealthState.Failed, new PodMigrationStatus { CloneCreatedAt = Now }).Action.ShouldBe(VerifyAction.RollBackCloneFailed);
        Verify(CloneHealthState.NotReady, new PodMigrationStatus { CloneCreatedAt = Now.AddSeconds(-30), CloneReadyAt = Now.AddSeconds(-2) })
            .Action.ShouldBe(VerifyAction.RollBackLostReadiness);
        Verify(CloneHealthState.Starting, new PodMigrationStatus { CloneCreatedAt = Now.AddMinutes(-2) }).ShouldBe(new VerifyDecision(VerifyAction.Wait, Delay: TimeSpan.FromMilliseconds(500)));
        Verify(CloneHealthState.Starting, new PodMigrationStatus { CloneCreatedAt = Now.AddMinutes(-2).AddMilliseconds(-1) }).Action.ShouldBe(VerifyAction.RollBackNeverReady);
    }

    [Theory]
    [InlineData(ErrorKind.Unavailable, nameof(CheckpointFailure.Retry))]
    [InlineData(ErrorKind.DeadlineExceeded, nameof(CheckpointFailure.Retry))]
    [InlineData(ErrorKind.Cancelled, nameof(CheckpointFailure.Retry))]
    [InlineData(ErrorKind.FailedPrecondition, nameof(CheckpointFailure.RetryIfSourceBusy))]
    [InlineData(ErrorKind.Internal, nameof(CheckpointFailure.RollBack))]
    [InlineData(ErrorKind.ResourceExhausted, nameof(CheckpointFailure.RollBack))]
    public void A_failed_checkpoint_is_retried_only_when_the_attempt_and_not_the_checkpoint_failed(ErrorKind kind, string expected)
        => CheckpointPhase.OnFailure(kind).ShouldBe(Enum.Parse<CheckpointFailure>(expected));

    [Fact]
    public void A_follower_that_finished_records_the_prepare_one_that_failed_is_forgotten_one_still_running_is_kept()
    {
        var status = new PodMigrationStatus { RestoreOperation = "op-follow-1" };
        CheckpointPhase.RecordFollowed(status, new Operation { Done = false }, Now);
        status.RestoreOperation.ShouldBe("op-follow-1");
        CheckpointPhase.RecordFollowed(status, null, Now);
        status.RestoreOperation.ShouldBe("op-follow-1");

        var prepared = new PreparedCheckpointInfo { Wall = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMilliseconds(250)) };
        CheckpointPhase.RecordFollowed(status, new Operation { Done = true, Prepared = prepared }, Now);
        status.PreparedAt.ShouldBe(Now);
        status.Timings!["prepare"].ShouldBe("250ms");

        var failed = new PodMigrationStatus { RestoreOperation = "op-follow-1" };
        CheckpointPhase.RecordFollowed(failed, new Operation { Done = true, Error = new OperationError { Code = 9, Message = "no" } }, Now);
        failed.RestoreOperation.ShouldBeNull();
        failed.PreparedAt.ShouldBeNull();
    }

    [Fact]
    public void A_condition_keeps_its_transition_time_until_its_value_changes()
    {
        var status = new PodMigrationStatus();
        status.SetCondition("Ready", "False", "A", "first", Now);
        status.SetCondition("Ready", "False", "B", "second", Now.AddSeconds(5));
        status.Condition("Ready").ShouldSatisfyAllConditions(
            c => c!.LastTransitionTime.ShouldBe(Now), c => c!.Reason.ShouldBe("B"), c => c!.Message.ShouldBe("second"));
        status.SetCondition("Ready", "True", "C", "third", Now.AddSeconds(9));
        status.Condition("Ready")!.LastTransitionTime.ShouldBe(Now.AddSeconds(9));
        status.Conditions!.Count.ShouldBe(1);
    }

    [Fact]
    public void A_rollback_keeps_its_cause_through_to_the_rolled_back_message()
    {
        var status = new PodMigrationStatus { Phase = MigrationPhase.Verifying, SourceNode = "node-a", StartedAt = Now.AddSeconds(-10) };
        status.BeginRollback("CloneFailed", "clone pod default/c is Failed", Now);
        status.Message.ShouldBe("rolling back: clone pod default/c is Failed");
        status.RolledBack("web", Now.AddSeconds(1));
        status.Phase.ShouldBe(MigrationPhase.RolledBack);
        status.CompletedAt.ShouldBe(Now.AddSeconds(1));
        status.Message.ShouldBe("rolled back (CloneFailed): clone pod default/c is Failed; the source pod web runs on node-a");
        status.Condition("RollingBack")!.Status.ShouldBe("False");
        status.Condition("Ready").ShouldSatisfyAllConditions(c => c!.Status.ShouldBe("False"), c => c!.Reason.ShouldBe("CloneFailed"));
    }

    [Fact]
    public void A_migration_reports_its_downtime_and_total_when_it_succeeds()
    {
        var status = new PodMigrationStatus
        {
            StartedAt = Now.AddSeconds(-20), FrozenAt = Now.AddSeconds(-8), SourceStoppedAt = Now.AddSeconds(-7.5), CloneCreatedAt = Now.AddSeconds(-6),
            SourceNode = "node-a", TargetNode = "node-b", ClonePod = "web-clone", RestoredAt = Now.AddSeconds(-5),
        };
        status.SetTiming("import", TimeSpan.FromSeconds(1));
        status.CloneReady(Now.AddSeconds(-4));
        status.Timing("restore").ShouldBe(TimeSpan.FromSeconds(3));
        status.EnterVerifying(isClone: false, TimeSpan.FromSeconds(10), Now);
        status.Phase.ShouldBe(MigrationPhase.Verifying);
        status.DowntimeValue().ShouldBe(TimeSpan.FromSeconds(2.5));
        status.Verified(isClone: false, TimeSpan.FromSeconds(3), Now.AddSeconds(6));
        status.Committed.ShouldBe(true);
        status.Timing("verify").ShouldBe(TimeSpan.FromSeconds(10));
        status.Succeed("web", isClone: false, Now.AddSeconds(7));
        status.Phase.ShouldBe(MigrationPhase.Succeeded);
        status.Timing("total").ShouldBe(TimeSpan.FromSeconds(27));
        status.Message.ShouldBe("pod web migrated from node-a to node-b as web-clone (downtime 2.5s)");
        status.Condition("Ready")!.Status.ShouldBe("True");
    }

    [Fact]
    public void A_clone_has_no_migration_downtime_its_source_is_down_until_it_is_resumed()
    {
        var status = new PodMigrationStatus { FrozenAt = Now.AddSeconds(-8), CloneCreatedAt = Now.AddSeconds(-6) };
        status.CloneReady(Now.AddSeconds(-4));
        status.EnterVerifying(isClone: true, TimeSpan.FromSeconds(10), Now);
        status.Downtime.ShouldBeNull();
        status.SourceResumed(Now.AddSeconds(2));
        status.DowntimeValue().ShouldBe(TimeSpan.FromSeconds(10));
    }

    private static VerifyDecision Verify(CloneHealthState state, PodMigrationStatus status, DateTimeOffset? readySince = null)
        => VerifyPhase.Decide(new CloneHealth(state, "clone", readySince), status, Settings.VerifyWindow, TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(500), Now);
}
