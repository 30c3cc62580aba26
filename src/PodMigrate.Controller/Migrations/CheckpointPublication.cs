using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations;

/// <summary>Where the source agent's checkpoint operation stands once the migration has moved past it.</summary>
internal enum PublicationState
{
    /// <summary>Published: durable on the share (<see cref="CheckpointPublication.Outcome.Result"/> when the agent still had it).</summary>
    Published,

    /// <summary>The operation still runs (after a seal: the archive is being made durable).</summary>
    Pending,

    /// <summary>It ended without a publication (<see cref="CheckpointPublication.Outcome.Failure"/> says why).</summary>
    Failed,
}

/// <summary>
/// The end of a checkpoint the migration went on from before it was durable (sealed early): the commit waits for its
/// publication, and a rollback waits for the operation to end before it resumes the source (the agent refuses a Resume
/// as busy while it runs). A wakeup is arranged while it is pending.
/// </summary>
internal sealed class CheckpointPublication(IAgentDirectory agents, OperationWakeups? wakeups)
{
    public sealed record Outcome(PublicationState State, CheckpointResult? Result = null, string? Failure = null);

    public async Task<Outcome> CheckAsync(PodMigration migration, PodMigrationStatus status, CancellationToken cancellationToken)
    {
        var agent = await agents.GetAsync(status.SourceNode!, cancellationToken);
        if (status.CheckpointOperation is not { } operationId)
        {
            return await OnShareAsync(agent, status, "no checkpoint operation was recorded", cancellationToken);
        }
        Operation operation;
        try
        {
            operation = await agent.GetOperationAsync(operationId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unimplemented)
        {
            // Its agent restarted and forgot the operation (or has none): the share says whether it was published.
            return await OnShareAsync(agent, status, e.Message, cancellationToken);
        }
        if (!operation.Done)
        {
            _ = wakeups?.WakeWhenDone(agent, operationId, Runtime.ObjectKey.Of(migration.Metadata));
            return new Outcome(PublicationState.Pending);
        }
        return AgentOperationCalls.Error(operation) is { } error
            ? new Outcome(PublicationState.Failed, Failure: error.Message)
            : new Outcome(PublicationState.Published, operation.Checkpoint);
    }

    private static async Task<Outcome> OnShareAsync(AgentClient agent, PodMigrationStatus status, string why, CancellationToken cancellationToken)
    {
        try
        {
            await agent.InspectCheckpointAsync(status.CheckpointId!, verify: false, cancellationToken);
            return new Outcome(PublicationState.Published);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return new Outcome(PublicationState.Failed, Failure: $"checkpoint {status.CheckpointId} is not published on the share and its operation is gone ({why})");
        }
    }
}
