using PodMigrate.Agent.V1;
using PodMigrate.Controller.Migrations;

namespace PodMigrate.Controller.Tests.Migrations;

/// <summary>A published checkpoint is restored only while its source is frozen by it: never an older state than the source reached.</summary>
[Trait("Category", "Unit")]
public sealed class SourceHoldCheckTests
{
    private const string Ours = "counter-0a1b2c3d4e5f";

    [Fact]
    public void Restores_only_a_source_frozen_by_this_committed_checkpoint()
        => SourceHoldCheck.Decide(Hold(Ours, HoldState.HoldCommitted, ContainerState.ContainerPaused), Ours).ShouldBe(HoldVerdict.Restore);

    [Fact]
    public void Restores_a_source_frozen_by_this_checkpoint_sealed_before_it_is_durable()
        => SourceHoldCheck.Decide(Hold(Ours, HoldState.HoldSealed, ContainerState.ContainerPaused), Ours).ShouldBe(HoldVerdict.Restore);

    [Theory]
    [InlineData(ContainerState.ContainerPaused)]   // between the dump and the end of the checkpoint
    [InlineData(ContainerState.ContainerRunning)]  // not frozen yet: a Resume now would be refused as busy, and the hold come after it
    public void Waits_while_the_agent_is_still_on_this_checkpoint(ContainerState container)
        => SourceHoldCheck.Decide(Hold(Ours, HoldState.HoldCheckpointing, container), Ours).ShouldBe(HoldVerdict.Wait);

    [Theory]
    [InlineData("", HoldState.HoldNone, ContainerState.ContainerRunning)]              // resumed: it ran on after the checkpoint
    [InlineData(Ours, HoldState.HoldCommitted, ContainerState.ContainerRunning)]       // journaled but thawed behind the agent's back
    [InlineData("other-checkpoint", HoldState.HoldCommitted, ContainerState.ContainerPaused)] // a later checkpoint holds it
    [InlineData(Ours, HoldState.HoldSealed, ContainerState.ContainerRunning)]          // sealed, yet thawed behind the agent's back
    [InlineData("other-checkpoint", HoldState.HoldSealed, ContainerState.ContainerPaused)]    // another migration's seal holds it
    [InlineData("", HoldState.HoldNone, ContainerState.ContainerStopped)]              // restarted or gone
    public void Anything_else_is_not_held_and_rolls_back(string checkpointId, HoldState state, ContainerState container)
        => SourceHoldCheck.Decide(Hold(checkpointId, state, container), Ours).ShouldBe(HoldVerdict.NotHeld);

    private static HoldInfo Hold(string checkpointId, HoldState state, ContainerState container)
        => new() { CheckpointId = checkpointId, State = state, ContainerState = container };
}
