using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations.Phases;

/// <summary>The end of a migration on the agents, shared by the commit and the rollback: the source released, the checkpoint deleted.</summary>
internal sealed class SourceRelease(IAgentDirectory agents, ILogger logger)
{
    /// <summary>Resumes (rollback, Clone) or discards (Migrate) the held source; one no longer held was released before.</summary>
    public async Task ReleaseSourceAsync(AgentClient agent, PodMigration migration, PodMigrationStatus status, bool resume, CancellationToken cancellationToken)
    {
        try
        {
            var selector = MigrationSteps.SourceSelector(migration, status);
            var state = resume
                ? (await agent.ResumeAsync(selector, cancellationToken, status.CheckpointId)).SourceState
                : (await agent.DiscardAsync(selector, cancellationToken, status.CheckpointId)).SourceState;
            ControllerLog.SourceReleased(logger, migration.Spec.PodName, status.SourceNode!, state.ToString());
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.FailedPrecondition)
        {
            // Not held any more (an earlier attempt released it, or, on rollback, the agent already resumed it), or held
            // for another migration's checkpoint, which is not this migration's to release.
            ControllerLog.SourceNotHeld(logger, migration.Spec.PodName, status.SourceNode!, e.Message);
        }
    }

    public async Task DeleteCheckpointAsync(PodMigrationStatus status, CancellationToken cancellationToken)
    {
        // The target agent also removes the checkpoint image it imported; the source agent can still clear the share.
        foreach (var node in new[] { status.TargetNode, status.SourceNode })
        {
            if (node is null)
            {
                continue;
            }
            try
            {
                var agent = await agents.GetAsync(node, cancellationToken);
                await agent.DeleteCheckpointAsync(status.CheckpointId!, force: true, cancellationToken);
                return;
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                return;
            }
            catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
            {
                ControllerLog.CheckpointNotDeleted(logger, status.CheckpointId!, node, e.Message);
            }
        }
    }
}
