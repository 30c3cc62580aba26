using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Operations;

/// <summary>Bounds of the operation table.</summary>
internal sealed class AgentOperationsOptions
{
    /// <summary>How long a finished operation's result stays readable.</summary>
    public TimeSpan Retention { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>At most this many finished operations are kept (the oldest go first).</summary>
    public int MaxFinished { get; init; } = 256;

    /// <summary>At most this many run at once; one more is ResourceExhausted.</summary>
    public int MaxRunning { get; init; } = 64;

    /// <summary>How long the agent's shutdown waits for cancelled operations to run their compensations.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// The owner of the agent's long operations (checkpoint, restore, prepare): each runs as a task of the agent, under the
/// agent's lifetime and its own cancel, never under the caller's call, and is found again by its id. The operation
/// classes stay as they are: this only starts them, records their progress and outcome, and keeps the outcome for a
/// bounded time. Cancelling (or the agent stopping) cancels the operation's token, so its own compensations apply: a
/// checkpoint cancelled before its publication resumes its source, one after it stays held (the journal is authoritative).
/// <para>
/// States: Running → Succeeded | Failed (Failed with Cancelled for a cancel). An id the table knows attaches; the table
/// lives in memory and does not survive the agent.
/// </para>
/// </summary>
internal sealed class AgentOperations(
    CheckpointOperation checkpoint,
    RestoreOperation restore,
    Preparing.PreparedCheckpoints prepared,
    AgentOperationsOptions options,
    TimeProvider time,
    ILogger<AgentOperations> logger) : IHostedService, IDisposable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Tracked> _operations = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Starts the operation, or attaches to the one the table knows under the same id.</summary>
    public Operation Start(StartOperationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var kind = request.RequestCase switch
        {
            StartOperationRequest.RequestOneofCase.Checkpoint => OperationKind.OperationCheckpoint,
            StartOperationRequest.RequestOneofCase.Restore => OperationKind.OperationRestore,
            StartOperationRequest.RequestOneofCase.PrepareRestore => OperationKind.OperationPrepareRestore,
            _ => throw PodMigrateException.InvalidArgument("an operation needs a checkpoint, restore or prepare_restore request"),
        };
        var id = request.OperationId.Length == 0 ? NewId(kind) : ValidateId(request.OperationId);
        Tracked tracked;
        lock (_lock)
        {
            Prune();
            if (_operations.TryGetValue(id, out var existing))
            {
                return existing.Kind == kind
                    ? existing.Snapshot()
                    : throw PodMigrateException.FailedPrecondition($"operation {id} is a {Name(existing.Kind)}, not a {Name(kind)}");
            }
            if (_stopping.IsCancellationRequested)
            {
                throw PodMigrateException.Unavailable("the agent is shutting down; it starts no operation");
            }
            if (_operations.Values.Count(o => !o.Done) >= options.MaxRunning)
            {
                throw new PodMigrateException(ErrorKind.ResourceExhausted, $"{options.MaxRunning} operations are running on this agent; try again when one has finished");
            }
            tracked = new Tracked(id, kind, Describe(request), time.GetUtcNow(), CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token));
            _operations.Add(id, tracked);
            AgentLog.OperationStarted(logger, id, tracked.Description);
            // Owned: the table holds the task, StopAsync waits for it; failures become the operation's outcome.
            tracked.Task = Task.Run(() => RunAsync(tracked, request));
        }
        return tracked.Snapshot();
    }

    public Operation Get(string operationId) => Find(operationId).Snapshot();

    public Operation Cancel(string operationId)
    {
        var tracked = Find(operationId);
        if (!tracked.Done)
        {
            AgentLog.OperationCancelRequested(logger, tracked.Id);
            tracked.Cancel.Cancel();
        }
        return tracked.Snapshot();
    }

    public IReadOnlyList<Operation> List()
    {
        lock (_lock)
        {
            Prune();
            return [.. _operations.Values.OrderBy(o => o.Started).Select(o => o.Snapshot())];
        }
    }

    /// <summary>The operation now, then at every change until it is done. The watcher's cancellation ends only the watch.</summary>
    public async IAsyncEnumerable<Operation> WatchAsync(string operationId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var tracked = Find(operationId);
        var seen = -1L;
        while (true)
        {
            var changed = tracked.Changed;
            var snapshot = tracked.Snapshot();
            if (snapshot.Revision != seen)
            {
                seen = snapshot.Revision;
                yield return snapshot;
            }
            if (snapshot.Done)
            {
                yield break;
            }
            await changed.WaitAsync(cancellationToken);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The agent stops: every running operation is cancelled (its compensations run) and waited for, within the grace.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        Task[] running;
        lock (_lock)
        {
            _stopping.Cancel();
            running = [.. _operations.Values.Where(o => !o.Done && o.Task is not null).Select(o => o.Task!)];
        }
        if (running.Length > 0)
        {
            try
            {
                await Task.WhenAll(running).WaitAsync(options.ShutdownGrace, time, cancellationToken);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                AgentLog.OperationsOutlivedShutdown(logger, running.Count(t => !t.IsCompleted));
            }
        }
    }

    public void Dispose()
    {
        _stopping.Dispose();
        lock (_lock)
        {
            foreach (var tracked in _operations.Values.Where(o => o.Done))
            {
                tracked.Cancel.Dispose();
            }
        }
    }

    private async Task RunAsync(Tracked tracked, StartOperationRequest request)
    {
        var token = tracked.Cancel.Token;
        try
        {
            switch (request.RequestCase)
            {
                case StartOperationRequest.RequestOneofCase.Checkpoint:
                    var checkpointed = await checkpoint.RunAsync(request.Checkpoint, tracked.Report, token);
                    tracked.Finish(new Operation { Checkpoint = checkpointed }, time.GetUtcNow());
                    break;
                case StartOperationRequest.RequestOneofCase.Restore:
                    var restored = await restore.RunAsync(request.Restore, tracked.Report, token);
                    tracked.Finish(new Operation { Restore = restored }, time.GetUtcNow());
                    break;
                default:
                    tracked.Report(new Progress { Phase = Phase.Fetch, Message = $"preparing checkpoint {request.PrepareRestore.CheckpointId}" });
                    var ready = await prepared.PrepareAsync(request.PrepareRestore, token);
                    tracked.Finish(new Operation { Prepared = ready }, time.GetUtcNow());
                    break;
            }
            AgentLog.OperationSucceeded(logger, tracked.Id);
        }
        catch (PodMigrateException e)
        {
            tracked.Finish(Failure(ErrorMapping.ToStatus(e).StatusCode, ErrorMapping.ToStatus(e).Detail), time.GetUtcNow());
            AgentLog.OperationFailed(logger, tracked.Id, e.Kind, e.Message);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            var why = _stopping.IsCancellationRequested ? "the agent is shutting down" : "cancelled";
            tracked.Finish(Failure(Grpc.Core.StatusCode.Cancelled, $"{tracked.Description}: {why}"), time.GetUtcNow());
            AgentLog.OperationFailed(logger, tracked.Id, ErrorKind.Cancelled, why);
        }
        catch (Exception e)
        {
            // The operation's boundary: whatever escaped it ends it, logged with its stack, as the RPC would have.
            tracked.Finish(Failure(Grpc.Core.StatusCode.Internal, $"{tracked.Description}: {e.GetType().Name}: {e.Message}"), time.GetUtcNow());
            AgentLog.OperationCrashed(logger, e, tracked.Id);
        }
    }

    private static Operation Failure(Grpc.Core.StatusCode code, string message)
        => new() { Error = new OperationError { Code = (int)code, Message = message } };

    private Tracked Find(string operationId)
    {
        lock (_lock)
        {
            Prune();
            return _operations.TryGetValue(operationId, out var tracked)
                ? tracked
                : throw PodMigrateException.NotFound(
                    $"operation {operationId} is not known to this agent (finished longer than {options.Retention} ago, or started before the agent restarted: GetHold and InspectCheckpoint say what became of it)");
        }
    }

    /// <summary>Drops finished operations past their retention, then the oldest finished beyond the count. Under the lock.</summary>
    private void Prune()
    {
        var now = time.GetUtcNow();
        var finished = _operations.Values.Where(o => o.Done).OrderBy(o => o.Finished).ToList();
        var excess = finished.Count - options.MaxFinished;
        foreach (var tracked in finished)
        {
            if (excess-- > 0 || now - tracked.Finished > options.Retention)
            {
                _operations.Remove(tracked.Id);
                tracked.Cancel.Dispose();
            }
        }
    }

    private string NewId(OperationKind kind)
        => $"{Name(kind).Replace(' ', '-')}-{time.GetUtcNow():yyyyMMddHHmmss}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    private static string ValidateId(string id)
    {
        if (id.Length > 128 || !id.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '.') || !char.IsAsciiLetterOrDigit(id[0]))
        {
            throw PodMigrateException.InvalidArgument($"operation id '{id}' must be 1-128 of a-z, 0-9, '-', '.', starting with a letter or digit");
        }
        return id;
    }

    private static string Name(OperationKind kind) => kind switch
    {
        OperationKind.OperationCheckpoint => "checkpoint",
        OperationKind.OperationRestore => "restore",
        _ => "prepare",
    };

    private static string Describe(StartOperationRequest request) => request.RequestCase switch
    {
        StartOperationRequest.RequestOneofCase.Checkpoint => $"checkpoint {(request.Checkpoint.CheckpointId.Length > 0 ? request.Checkpoint.CheckpointId + " " : "")}of {Describe(request.Checkpoint.Container)}",
        StartOperationRequest.RequestOneofCase.Restore => $"restore of checkpoint {request.Restore.CheckpointId}",
        _ => $"prepare of checkpoint {request.PrepareRestore.CheckpointId} for {request.PrepareRestore.PodNamespace}/{request.PrepareRestore.PodName}",
    };

    private static string Describe(ContainerSelector? selector) => selector?.TargetCase switch
    {
        ContainerSelector.TargetOneofCase.Pod => $"{selector.Pod.Namespace}/{selector.Pod.Pod}" + (selector.Pod.Container.Length > 0 ? "/" + selector.Pod.Container : ""),
        ContainerSelector.TargetOneofCase.ContainerId => selector.ContainerId,
        _ => "(no container)",
    };

    /// <summary>One operation: its latest progress and outcome, guarded by its own lock; watchers wait on <see cref="Changed"/>.</summary>
    private sealed class Tracked(string id, OperationKind kind, string description, DateTimeOffset started, CancellationTokenSource cancel)
    {
        private readonly Lock _lock = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private Progress? _progress;
        private Operation? _outcome;
        private long _revision;

        public string Id { get; } = id;

        public OperationKind Kind { get; } = kind;

        public string Description { get; } = description;

        public DateTimeOffset Started { get; } = started;

        public DateTimeOffset Finished { get; private set; }

        public CancellationTokenSource Cancel { get; } = cancel;

        public Task? Task { get; set; }

        public bool Done
        {
            get
            {
                lock (_lock)
                {
                    return _outcome is not null;
                }
            }
        }

        /// <summary>Completes at the next change.</summary>
        public Task Changed
        {
            get
            {
                lock (_lock)
                {
                    return _changed.Task;
                }
            }
        }

        public void Report(Progress progress)
        {
            lock (_lock)
            {
                if (_outcome is not null)
                {
                    return;
                }
                _progress = progress;
                Signal();
            }
        }

        public void Finish(Operation outcome, DateTimeOffset finished)
        {
            lock (_lock)
            {
                Finished = finished;
                _outcome = outcome;
                Signal();
            }
        }

        public Operation Snapshot()
        {
            lock (_lock)
            {
                var snapshot = new Operation
                {
                    OperationId = Id,
                    Kind = Kind,
                    Description = Description,
                    Started = Timestamp.FromDateTimeOffset(Started),
                    Revision = _revision,
                    State = _outcome is null ? OperationState.OperationRunning : _outcome.Error is null ? OperationState.OperationSucceeded : OperationState.OperationFailed,
                    Done = _outcome is not null,
                };
                if (_progress is not null)
                {
                    snapshot.Progress = _progress.Clone();
                }
                if (_outcome is not null)
                {
                    snapshot.Finished = Timestamp.FromDateTimeOffset(Finished);
                    switch (_outcome.OutcomeCase)
                    {
                        case Operation.OutcomeOneofCase.Checkpoint: snapshot.Checkpoint = _outcome.Checkpoint; break;
                        case Operation.OutcomeOneofCase.Restore: snapshot.Restore = _outcome.Restore; break;
                        case Operation.OutcomeOneofCase.Prepared: snapshot.Prepared = _outcome.Prepared; break;
                        default: snapshot.Error = _outcome.Error; break;
                    }
                }
                return snapshot;
            }
        }

        /// <summary>Under the lock: a new revision, and the watchers woken.</summary>
        private void Signal()
        {
            _revision++;
            var changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            changed.TrySetResult();
        }
    }
}
