using System.Security.Cryptography;
using Grpc.Core;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Migrations;

/// <summary>
/// How the reconciler runs a long agent step without holding a worker: it writes an operation id into the status, starts
/// the agent-owned operation under that id (starting again with the same id attaches, so a requeued or restarted
/// controller never starts the work twice), and returns to be requeued while it runs. An agent without operations (an
/// older one: Unimplemented) is asked with the blocking call instead.
/// </summary>
internal static class AgentOperationCalls
{
    /// <summary>A new operation id for one attempt of one step of a migration, e.g. "counter-1a2b3c4d5e6f-checkpoint-9f3a".</summary>
    public static string NewId(string checkpointId, string step)
        => $"{checkpointId}-{step}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2))}";

    /// <summary>
    /// Starts or attaches to the operation and returns it as it stands (running, or done with its outcome or error: an
    /// operation's failure is not thrown). A failure to reach the agent is thrown, as for any call.
    /// </summary>
    public static async Task<Operation> StartOrAttachAsync(AgentClient agent, StartOperationRequest request, Func<CancellationToken, Task<Operation>> blocking, CancellationToken cancellationToken)
    {
        try
        {
            return await agent.StartOperationAsync(request, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.Unimplemented)
        {
            try
            {
                var done = await blocking(cancellationToken);
                done.OperationId = request.OperationId;
                done.Done = true;
                done.State = OperationState.OperationSucceeded;
                return done;
            }
            catch (PodMigrateException failure)
            {
                return new Operation
                {
                    OperationId = request.OperationId,
                    Done = true,
                    State = OperationState.OperationFailed,
                    Error = new OperationError { Code = (int)ErrorMapping.ToStatusCode(failure.Kind), Message = failure.Message },
                };
            }
        }
    }

    /// <summary>The error a done operation failed with, as the blocking call would have thrown it; null when it succeeded.</summary>
    public static PodMigrateException? Error(Operation operation)
        => operation.Error is { } error ? new PodMigrateException(ErrorMapping.ToErrorKind((StatusCode)error.Code), error.Message) : null;

    /// <summary>When to look again at a running operation: a quarter of its age so far, within [100 ms, <paramref name="cap"/>].</summary>
    public static TimeSpan PollDelay(Operation operation, DateTimeOffset now, TimeSpan cap)
    {
        var age = operation.Started is { } started ? now - started.ToDateTimeOffset() : TimeSpan.Zero;
        var delay = age / 4;
        var floor = TimeSpan.FromMilliseconds(100);
        return delay < floor ? floor : delay > cap ? cap : delay;
    }

    /// <summary>Asks the agent to cancel the operation (best effort: it may be gone or done; an older agent has none).</summary>
    public static async Task CancelAsync(AgentClient agent, string operationId, CancellationToken cancellationToken)
    {
        try
        {
            await agent.CancelOperationAsync(operationId, cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.NotFound or ErrorKind.Unimplemented or ErrorKind.Unavailable)
        {
        }
    }
}
