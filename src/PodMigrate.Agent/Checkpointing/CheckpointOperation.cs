using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;
using PodMigrate.Agent.NodeInfo;

namespace PodMigrate.Agent.Checkpointing;

/// <summary>
/// One checkpoint, start to end: resolve the container, freeze it, dump it, stage the archive's files, publish the
/// archive on the share, then do with the source what the request asked. Every step that changes the source has its
/// compensation beside it: until the checkpoint is published, any failure or cancellation resumes the source.
/// <para>
/// The manifest's publication is the commit point of a checkpoint that leaves its source stopped (or stops it): the
/// hold is journaled as Publishing before it, and after it the source is never resumed by this operation or by the
/// agent's start-up recovery, only by an explicit Resume (rollback) or Discard (commit). The steps after the commit run
/// outside the failure path on their own bounds, not under the caller's cancellation.
/// </para>
/// </summary>
internal sealed class CheckpointOperation(
    IOptions<AgentOptions> options,
    ContainerResolver resolver,
    CheckpointCapture capture,
    ICheckpointStore store,
    HeldSources sources,
    CriStatusReader criStatus,
    OperationGate gate,
    SourceJournal journal,
    CriuCapabilities criu,
    CommitPointProbe probe,
    AgentMetrics metrics,
    TimeProvider time,
    ILogger<CheckpointOperation> logger)
{
    private const string OperationName = "checkpoint";

    /// <summary>The bound of each step after the commit (journal, discard, retention): its own, never the caller's.</summary>
    private static readonly TimeSpan PostCommitTimeout = TimeSpan.FromMinutes(3);
    private readonly AgentOptions _options = options.Value;

    public async Task<CheckpointResult> RunAsync(CheckpointRequest request, Action<Progress> report, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var codec = CodecOf(request);
        var disposition = request.Disposition == SourceDisposition.Unspecified ? SourceDisposition.SourceLeaveRunning : request.Disposition;
        if (disposition is not (SourceDisposition.SourceLeaveRunning or SourceDisposition.SourceLeaveStopped or SourceDisposition.SourceStop))
        {
            throw PodMigrateException.InvalidArgument($"unknown source disposition {disposition}");
        }
        if (request.SealEarly && disposition == SourceDisposition.SourceLeaveRunning)
        {
            throw PodMigrateException.InvalidArgument("seal_early hands the source's state over before the archive is durable: it needs the source held (SOURCE_LEAVE_STOPPED or SOURCE_STOP)");
        }
        var id = string.IsNullOrEmpty(request.CheckpointId) ? CheckpointId.New(time) : CheckpointId.Parse(request.CheckpointId);
        using var deadline = OperationDeadline.Start(request.Timeout, _options.OperationTimeout, cancellationToken, out var timeout);
        using var _ = metrics.Track(OperationName);
        var timings = new List<PhaseTiming>();
        SourceContainer? source = null;
        try
        {
            report(new Progress { Phase = Phase.Precheck, Message = "resolving the container" });
            source = await resolver.ResolveAsync(request.Container, deadline.Token);
            using var busy = gate.Enter(source.Id, $"checkpoint {id}");
            AgentLog.CheckpointStarted(logger, id.Value, source.DisplayName, disposition.ToString(), codec.Name);
            await PrecheckAsync(source, id, deadline.Token);
            var criuVersion = (await criu.GetAsync(deadline.Token)).Version.ToString();
            timings.Add(Timing(Phase.Precheck, time.GetElapsedTime(started)));

            var staging = Path.Combine(_options.StagingPath, id.Value);
            Directory.CreateDirectory(Path.GetDirectoryName(staging)!);
            StoredCheckpoint stored;
            long frozenSince;
            DateTimeOffset frozenAt;
            TimeSpan? frozen = null;
            // Once sealed early (and journaled so first), the source is never resumed here: a target may run from it.
            var sealedEarly = false;
            Timestamp? frozenAtStamp = null;
            void Report(Progress progress)
            {
                progress.FrozenAt = frozenAtStamp;
                progress.Sealed = sealedEarly;
                report(progress);
            }
            try
            {
                var captured = await CaptureAsync(source, id, request, staging, Report, timings, deadline.Token);
                frozenSince = time.GetTimestamp() - (long)((captured.Freeze + captured.Dump + captured.Metadata).TotalSeconds * time.TimestampFrequency);
                // The wall-clock instant the freeze began: with the restore's own instant, the workload's honest downtime.
                frozenAt = time.GetUtcNow() - time.GetElapsedTime(frozenSince);
                frozenAtStamp = Timestamp.FromDateTimeOffset(frozenAt);
                if (disposition == SourceDisposition.SourceLeaveRunning)
                {
                    // A copy: the workload runs again now, before the (longer) archive write.
                    await sources.ResumeAsync(source, id.Value, CancellationToken.None);
                    frozen = time.GetElapsedTime(frozenSince);
                }
                else
                {
                    // Journaled before the commit point: an agent that dies from here on asks the share whether it committed.
                    await journal.RecordAsync(new HeldSource(source.Id, source.ContainerdNamespace, HoldReason.Publishing, id.Value, time.GetUtcNow()), deadline.Token);
                }
                await probe.ReachedAsync(CommitPoint.BeforePublish, id.Value, deadline.Token);

                Report(new Progress { Phase = Phase.Write, Message = $"writing the archive to the share ({codec.Name})" });
                var publishStarted = time.GetTimestamp();
                var publish = PublishRequest(id, source, request, codec, captured, criuVersion);
                if (request.SealEarly)
                {
                    publish = publish with
                    {
                        BeforeSeal = async token =>
                        {
                            await journal.RecordAsync(new HeldSource(source.Id, source.ContainerdNamespace, HoldReason.Sealed, id.Value, time.GetUtcNow()), token);
                            sealedEarly = true;
                        },
                        Sealed = async token =>
                        {
                            Report(new Progress { Phase = Phase.Sync, Message = "sealed on the share; making the archive durable" });
                            await probe.ReachedAsync(CommitPoint.AfterSeal, id.Value, token);
                        },
                    };
                }
                stored = await store.PublishAsync(publish, new ArchiveProgressReporter(Report), deadline.Token);
                timings.Add(Timing(Phase.Write, time.GetElapsedTime(publishStarted)));
            }
            catch (Exception failure)
            {
                // The publication is the commit point, whatever the exception says: a manifest renamed into place before
                // the failure (a directory fsync that failed after the rename), or a share that cannot say, keeps the
                // source held. Only a checkpoint that is certainly not published lets the source run again.
                if (sealedEarly)
                {
                    AgentLog.SealedDespiteFailure(logger, failure, id.Value, source.DisplayName);
                }
                else if (disposition != SourceDisposition.SourceLeaveRunning && await sources.PublishedAsync(id.Value, CancellationToken.None) != false)
                {
                    AgentLog.CommittedDespiteFailure(logger, failure, id.Value, source.DisplayName);
                }
                else
                {
                    await sources.ReleaseAfterFailureAsync(source, id.Value);
                }
                throw;
            }
            finally
            {
                DeleteStaging(staging);
            }

            // Committed. From here on nothing resumes the source but an explicit Resume, and nothing here listens to the
            // caller: a cut stream or a lost leader must not undo a commit. Each step is bounded on its own.
            metrics.Bytes("raw", stored.Manifest.RawSize);
            metrics.Bytes("archive", stored.Manifest.CompressedSize);
            using var afterCommit = new CancellationTokenSource(PostCommitTimeout);
            await probe.ReachedAsync(CommitPoint.AfterPublish, id.Value, afterCommit.Token);
            var sourceState = await ApplyDispositionAsync(source, id, disposition, afterCommit.Token);
            frozen ??= time.GetElapsedTime(frozenSince);
            await ApplyRetentionAsync(afterCommit.Token);

            var wall = time.GetElapsedTime(started);
            foreach (var timing in timings)
            {
                metrics.Phase(OperationName, timing.Phase, timing.Duration.ToTimeSpan());
            }
            metrics.Frozen(frozen.Value);
            metrics.Succeeded(OperationName);
            AgentLog.CheckpointPublished(logger, id.Value, source.DisplayName, stored.Manifest.RawSize, stored.Manifest.CompressedSize, frozen.Value.TotalMilliseconds, wall.TotalMilliseconds);
            var result = new CheckpointResult
            {
                Checkpoint = CheckpointInfoMapper.ToInfo(stored),
                Wall = Duration.FromTimeSpan(wall),
                Frozen = Duration.FromTimeSpan(frozen.Value),
                SourceState = sourceState,
                FrozenAt = Timestamp.FromDateTimeOffset(frozenAt),
            };
            result.Timings.Add(timings);
            return result;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            metrics.Failed(OperationName, ErrorKind.DeadlineExceeded);
            throw new PodMigrateException(ErrorKind.DeadlineExceeded, $"checkpoint {id} of {source?.DisplayName ?? "the container"} did not finish within {timeout}; the source was resumed unless the checkpoint was sealed or published");
        }
        catch (PodMigrateException e)
        {
            metrics.Failed(OperationName, e.Kind);
            AgentLog.CheckpointFailed(logger, id.Value, source?.DisplayName ?? "?", e.Kind, e.Message);
            throw;
        }
    }

    private async Task PrecheckAsync(SourceContainer source, CheckpointId id, CancellationToken cancellationToken)
    {
        if (await journal.FindAsync(source.Id, cancellationToken) is { } held)
        {
            throw PodMigrateException.FailedPrecondition(
                $"container {source.DisplayName} is held stopped after checkpoint {held.CheckpointId}: Resume or Discard it first");
        }
        if (source.Runtime != ContainerdContainers.RuncV2)
        {
            throw PodMigrateException.FailedPrecondition($"container {source.DisplayName} runs on {source.Runtime}; PodMigrate checkpoints runc containers ({ContainerdContainers.RuncV2})");
        }
        try
        {
            await store.GetAsync(id, cancellationToken);
            throw new PodMigrateException(ErrorKind.AlreadyExists, $"checkpoint {id} already exists on the share; it is never overwritten");
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }

    private async Task<CapturedCheckpoint> CaptureAsync(
        SourceContainer source, CheckpointId id, CheckpointRequest request, string staging, Action<Progress> report, List<PhaseTiming> timings, CancellationToken cancellationToken)
    {
        report(new Progress { Phase = Phase.Freeze, Message = $"freezing {source.DisplayName}" });
        // Recorded before the freeze: an agent that dies from here on is found out by the next one, which resumes the source.
        await journal.RecordAsync(new HeldSource(source.Id, source.ContainerdNamespace, HoldReason.Checkpointing, id.Value, time.GetUtcNow()), cancellationToken);
        var freeze = await capture.FreezeAsync(source, cancellationToken);
        timings.Add(Timing(Phase.Freeze, freeze));

        report(new Progress { Phase = Phase.Dump, Message = "dumping with CRIU" });
        var criMetadata = await criStatus.ReadAsync(source, cancellationToken);
        var captureOptions = new CaptureOptions(request.TcpEstablished, request.FileLocks, _options.OperationTimeout,
            RootfsImageRef: criMetadata?.ImageRef,
            StatusDump: criMetadata?.StatusDump);
        var captured = await capture.DumpAsync(source, staging, captureOptions, freeze, cancellationToken);
        timings.Add(Timing(Phase.Dump, captured.Dump));
        timings.Add(Timing(Phase.Pack, captured.Metadata));
        return captured;
    }

    /// <summary>After the commit: a failure here leaves the source held (journaled), which the result says.</summary>
    private async Task<SourceState> ApplyDispositionAsync(SourceContainer source, CheckpointId id, SourceDisposition disposition, CancellationToken cancellationToken)
    {
        if (disposition == SourceDisposition.SourceLeaveRunning)
        {
            return SourceState.SourceRunning;
        }
        try
        {
            await journal.RecordAsync(new HeldSource(source.Id, source.ContainerdNamespace, HoldReason.LeftStopped, id.Value, time.GetUtcNow()), cancellationToken);
            if (disposition == SourceDisposition.SourceStop)
            {
                await sources.DiscardAsync(source, id.Value, cancellationToken);
                return SourceState.SourceGone;
            }
            AgentLog.SourceLeftStopped(logger, source.DisplayName, id.Value);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException or IOException)
        {
            AgentLog.PostPublishStepFailed(logger, e, id.Value, source.DisplayName);
        }
        return SourceState.SourceStopped;
    }

    /// <summary>Housekeeping after the commit: a failure is logged, never the checkpoint's.</summary>
    private async Task ApplyRetentionAsync(CancellationToken cancellationToken)
    {
        if (_options.KeepPerPod <= 0)
        {
            return;
        }
        try
        {
            await store.ApplyRetentionAsync(new RetentionPolicy(KeepLastPerPod: _options.KeepPerPod), cancellationToken);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException or IOException or UnauthorizedAccessException)
        {
            AgentLog.RetentionFailed(logger, e);
        }
    }

    private CheckpointPublishRequest PublishRequest(CheckpointId id, SourceContainer source, CheckpointRequest request, CodecSettings codec, CapturedCheckpoint captured, string criuVersion) => new()
    {
        Id = id,
        SourceDirectory = captured.Directory,
        KnownDigests = captured.KnownDigests,
        Codec = codec,
        SourceNode = _options.NodeName,
        Pod = source.IsPodContainer ? new PodReference(source.PodNamespace, source.PodName, source.PodUid) : null,
        Container = new ContainerReference(source.ContainerName, source.Id),
        ImageReference = source.Image,
        CriuVersion = criuVersion,
        Runtime = source.Runtime,
        Labels = request.Labels,
        Pinned = request.Pin,
    };

    private static CodecSettings CodecOf(CheckpointRequest request)
    {
        var name = request.Codec switch
        {
            Codec.Unspecified or Codec.Zstd => "zstd",
            Codec.Gzip => "gzip",
            Codec.None => "none",
            _ => throw PodMigrateException.InvalidArgument($"unknown codec {(int)request.Codec}"),
        };
        return CheckpointCodecs.Resolve(name, request.Level == 0 ? null : request.Level);
    }

    private static PhaseTiming Timing(Phase phase, TimeSpan duration) => new() { Phase = phase, Duration = Duration.FromTimeSpan(duration) };

    private static void DeleteStaging(string staging)
    {
        if (Directory.Exists(staging))
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>Turns the archive writer's progress into progress events (at most four per second).</summary>
    private sealed class ArchiveProgressReporter(Action<Progress> report) : IProgress<ArchiveProgress>
    {
        private long _lastReported;

        public void Report(ArchiveProgress value)
        {
            var now = Environment.TickCount64;
            if (now - Interlocked.Read(ref _lastReported) < 250)
            {
                return;
            }
            Interlocked.Exchange(ref _lastReported, now);
            report(new Progress { Phase = Phase.Write, BytesDone = value.RawBytes, Message = $"{value.Entries} files" });
        }
    }
}
