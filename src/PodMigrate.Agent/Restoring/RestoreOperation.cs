using System.Security.Cryptography;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;

namespace PodMigrate.Agent.Restoring;

/// <summary>
/// One restore, start to end: check the request, verify and unpack the checkpoint from the share into node-local
/// staging (every digest checked while streaming: a corrupt or truncated archive is DataLoss before anything is
/// created; the CRI method streams it into a checkpoint image in containerd instead, verified the same way), then bring it up by the
/// requested method — <see cref="CriImageRestore"/> or <see cref="DirectRestore"/>,
/// each of which removes what it created when it fails. Staging is removed at the end either way.
/// </summary>
internal sealed class RestoreOperation(
    IOptions<AgentOptions> options,
    ICheckpointStore store,
    CriImageRestore criImage,
    DirectRestore direct,
    OperationGate gate,
    AgentMetrics metrics,
    TimeProvider time,
    ILogger<RestoreOperation> logger)
{
    private const string OperationName = "restore";
    private readonly AgentOptions _options = options.Value;

    public async Task<RestoreResult> RunAsync(RestoreRequest request, Action<Progress> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var started = time.GetTimestamp();
        var id = CheckpointId.Parse(request.CheckpointId);
        var method = RestoreTargets.MethodOf(request);
        var targetKey = RestoreTargets.Validate(request, method);
        using var deadline = OperationDeadline.Start(request.Timeout, _options.OperationTimeout, cancellationToken, out var timeout);
        using var _ = metrics.Track(OperationName);
        var target = targetKey.Length > 0 ? targetKey : "(image only)";
        try
        {
            using var busy = targetKey.Length > 0 ? gate.Enter(targetKey, $"restore of {id}") : null;
            AgentLog.RestoreStarted(logger, id.Value, target, method.ToString());
            var staging = Path.Combine(_options.StagingPath, $"restore-{id}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}");
            Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            try
            {
                RestoreContext context;
                RestoredTarget restored;
                if (method == RestoreMethod.RestoreCriImage)
                {
                    // CRI fetches by itself: straight from the share into the checkpoint image in containerd's content store.
                    context = new RestoreContext(await store.GetAsync(id, deadline.Token), staging, report, time);
                    restored = await criImage.RunAsync(context, request, deadline.Token);
                }
                else
                {
                    context = await FetchAsync(id, staging, report, deadline.Token);
                    restored = await direct.RunAsync(context, request.ContainerId, deadline.Token);
                }
                return Succeeded(context, method, restored, time.GetElapsedTime(started));
            }
            finally
            {
                Directory.Delete(staging, recursive: true);
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            metrics.Failed(OperationName, ErrorKind.DeadlineExceeded);
            AgentLog.RestoreFailed(logger, id.Value, ErrorKind.DeadlineExceeded, $"not finished within {timeout}");
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"restore of checkpoint {id} into {target} did not finish within {timeout}; what it created was removed");
        }
        catch (PodMigrateException e)
        {
            metrics.Failed(OperationName, e.Kind);
            AgentLog.RestoreFailed(logger, id.Value, e.Kind, e.Message);
            throw;
        }
    }

    /// <summary>Streams the archive from the share, verifying every file and the whole blob, into staging.</summary>
    private async Task<RestoreContext> FetchAsync(CheckpointId id, string staging, Action<Progress> report, CancellationToken cancellationToken)
    {
        // Read, decompression, unpacking and verification run in one streaming pass; the phase covers all of them.
        report(new Progress { Phase = Phase.Fetch, Message = $"fetching, verifying and unpacking checkpoint {id}" });
        var fetchStarted = time.GetTimestamp();
        var stored = await store.ExtractAsync(id, Path.Combine(staging, "archive"), cancellationToken, ArchiveVerification.ArchiveDigest);
        var fetched = time.GetElapsedTime(fetchStarted);
        var context = new RestoreContext(stored, staging, report, time);
        context.Record(Phase.Fetch, fetched);
        return context;
    }

    private RestoreResult Succeeded(RestoreContext context, RestoreMethod method, RestoredTarget restored, TimeSpan wall)
    {
        foreach (var timing in context.Timings)
        {
            metrics.Phase(OperationName, timing.Phase, timing.Duration.ToTimeSpan());
        }
        metrics.Bytes("restored", context.Stored.Manifest.RawSize);
        metrics.Succeeded(OperationName);
        AgentLog.Restored(logger, context.Id.Value, restored.ContainerId.Length > 0 ? restored.ContainerId : restored.CheckpointImage, restored.Pid, wall.TotalMilliseconds);
        var result = new RestoreResult
        {
            CheckpointId = context.Id.Value,
            ContainerId = restored.ContainerId,
            SandboxId = restored.SandboxId,
            Pid = restored.Pid,
            PodIp = restored.PodIp,
            CheckpointImage = restored.CheckpointImage,
            Method = method,
            Wall = Duration.FromTimeSpan(wall),
        };
        result.Timings.Add(context.Timings);
        return result;
    }
}
