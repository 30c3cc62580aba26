using System.Globalization;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>
/// The OOM guard, run by the leader: one memory stream per node's agent (<see cref="AgentClient.WatchMemoryAsync"/>)
/// feeds <see cref="MemoryHistory"/>; every sample interval the guard gathers the nodes, the opted-in pods and the
/// PodMigrations, asks <see cref="GuardDecision"/> what to do, and does it: a PodMigration labelled
/// podmigrate.io/trigger: oom-guard with the reason in its annotations and an Event on the pod, or a warning Event.
/// Cooldowns and "one guard migration per node" come from the PodMigrations themselves, so a new leader keeps them.
/// </summary>
internal sealed class OomGuardLoop(
    IKubernetesApi api,
    IAgentDirectory agents,
    Informer<V1Pod> pods,
    Informer<PodMigration> migrations,
    EventRecorder events,
    OomGuardSettings settings,
    TimeProvider time,
    ILogger<OomGuardLoop> logger)
{
    public const string ReasonAnnotation = "podmigrate.io/oom-guard-reason";
    public const string ForecastAnnotation = "podmigrate.io/oom-guard-forecast-seconds";
    public const string EstimateAnnotation = "podmigrate.io/oom-guard-estimate-seconds";
    public const string BytesAnnotation = "podmigrate.io/oom-guard-memory-bytes";
    public const string NodeAnnotation = "podmigrate.io/oom-guard-node";

    private static readonly TimeSpan WatchRetryInitial = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan WatchRetryMax = TimeSpan.FromSeconds(15);

    /// <summary>A pod bound to a node but not yet started counts as starting now for at most this long (a stuck one must not disarm the guard).</summary>
    private static readonly TimeSpan PendingStartLimit = TimeSpan.FromMinutes(2);

    private readonly MemoryHistory _history = new(settings.Window * 2);
    private readonly Dictionary<string, Task> _watchers = new(StringComparer.Ordinal);
    private readonly HashSet<string> _alertedNodes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _alertedPods = new(StringComparer.Ordinal);
    private readonly HashSet<string> _settlingNodes = new(StringComparer.Ordinal);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        OomGuardLog.Started(logger, settings.SampleInterval, settings.Margin);
        try
        {
            using var timer = new PeriodicTimer(settings.SampleInterval, time);
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                try
                {
                    await TickAsync(stopping.Token);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The loop's boundary: a round that failed (API server, an agent) is logged; the next one tries again.
                    OomGuardLog.TickFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Lost the lease or stopping.
        }
        finally
        {
            await stopping.CancelAsync();
            await Task.WhenAll(_watchers.Values).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            _watchers.Clear();
        }
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        foreach (var endpoint in await agents.ListAsync(cancellationToken))
        {
            if (!_watchers.TryGetValue(endpoint.NodeName, out var watcher) || watcher.IsCompleted)
            {
                var node = endpoint.NodeName;
                _watchers[node] = Task.Run(() => WatchAsync(node, cancellationToken), CancellationToken.None);
            }
        }
        var now = time.GetUtcNow();
        var series = _history.Snapshot(now - settings.SampleInterval * 5);
        if (series.Count == 0)
        {
            return;
        }
        var nodeObjects = (await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ListNodeAsync(cancellationToken: t), "list nodes", cancellationToken)).Items
            .Where(n => n.Metadata.Name is not null)
            .ToDictionary(n => n.Metadata.Name!, StringComparer.Ordinal);
        var allMigrations = migrations.List();
        var running = allMigrations.Where(m => !MigrationPhase.IsTerminal(m.Status?.Phase)).ToList();
        var guardMigrations = allMigrations.Where(IsGuardMigration).ToList();
        var inFlightNodes = running.Where(IsGuardMigration)
            .SelectMany(m => new[] { m.Metadata.Annotations.ValueAt(NodeAnnotation), m.Status?.SourceNode, m.Spec.TargetNode, m.Status?.TargetNode })
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        var busyPods = running.SelectMany(m => new[] { $"{m.Namespace}/{m.Spec.PodName}", m.Status?.ClonePod is { } clone ? $"{m.Namespace}/{clone}" : null })
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        var cooling = guardMigrations.Where(m => m.Metadata.CreationTimestamp is { } created && now - created < settings.Cooldown)
            .SelectMany(m => new[] { $"{m.Namespace}/{m.Spec.PodName}", m.Status?.ClonePod is { } clone ? $"{m.Namespace}/{clone}" : null })
            .OfType<string>()
            .ToHashSet(StringComparer.Ordinal);
        var moves = guardMigrations.Where(m => m.Status?.Phase == MigrationPhase.Succeeded)
            .OrderBy(m => m.Status?.CompletedAt)
            .Select(Observation)
            .OfType<MoveObservation>()
            .ToList();

        var guardNodes = new List<GuardNode>();
        var guardPods = new List<GuardPod>();
        var podObjects = new Dictionary<string, V1Pod>(StringComparer.Ordinal);
        var lastStarts = LastStartByNode(pods.List(), now);
        foreach (var node in series)
        {
            var nodeObject = nodeObjects.GetValueOrDefault(node.Node);
            var capacity = node.Capacity > 0 ? node.Capacity : MigrationPrecheck.ParseQuantity(nodeObject?.Status?.Capacity?.TryGetValue("memory", out var memory) == true ? memory : null);
            guardNodes.Add(new GuardNode(node.Node, capacity, node.Points, IsSchedulable(nodeObject), inFlightNodes.Contains(node.Node), _alertedNodes.Contains(node.Node),
                lastStarts.TryGetValue(node.Node, out var lastStart) ? now - lastStart : null));
            foreach (var (key, container) in node.Containers)
            {
                var pod = pods.Get(new ObjectKey(container.Namespace, container.Pod));
                if (pod is null || !TriggerLabels.OptedIn(pod.Metadata.Labels))
                {
                    continue;
                }
                podObjects[key] = pod;
                var notMovable = pod.Metadata.DeletionTimestamp is not null ? "being deleted"
                    : pod.Spec.NodeName != node.Node ? "not bound to this node"
                    : pod.Status?.Phase != "Running" ? "not Running"
                    : busyPods.Contains(key) ? "a migration of it runs"
                    : cooling.Contains(key) ? "in its cooldown after a guard migration"
                    : null;
                var started = pod.Status?.ContainerStatuses?.FirstOrDefault(c => c.Name == container.Container)?.State?.Running?.StartedAt;
                guardPods.Add(new GuardPod(container.Namespace, container.Pod, node.Node, container.Container, container.Points, container.LimitBytes, notMovable, _alertedPods.Contains(key),
                    started is { } at ? now - at : null));
            }
        }

        var result = GuardDecision.Decide(guardNodes, guardPods, moves, settings);
        foreach (var outlook in result.Outlooks)
        {
            ControllerMetrics.OomGuardForecast(outlook.Node, outlook.Forecast.Level, outlook.Forecast.Capacity, outlook.Forecast.BytesPerSecond, outlook.Forecast.TimeToExhaustion);
        }
        foreach (var (pod, estimate) in result.Estimates)
        {
            ControllerMetrics.OomGuardEstimate(pod, estimate);
        }
        var settling = result.Actions.OfType<SettlingAction>().ToList();
        foreach (var hold in settling.Where(h => _settlingNodes.Add(h.Node)))
        {
            // Once per settle: the trigger was reached while a container on the node had only just started.
            OomGuardLog.Settling(logger, hold.Node, hold.Reason);
            ControllerMetrics.OomGuardDecision("held_settling");
        }
        _settlingNodes.IntersectWith(settling.Select(h => h.Node));
        foreach (var action in result.Actions.Where(a => a is not SettlingAction))
        {
            await ActAsync(action, podObjects, cancellationToken);
        }
    }

    /// <summary>
    /// Per node, when a container of a pod on it last started (a restore by a migration is a start too); a pod bound to it
    /// that has not started yet counts as starting now (its fill comes next), for at most <see cref="PendingStartLimit"/>.
    /// </summary>
    private static Dictionary<string, DateTimeOffset> LastStartByNode(IReadOnlyList<V1Pod> all, DateTimeOffset now)
    {
        var starts = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var pod in all)
        {
            if (pod.Spec.NodeName is not { } node || pod.Status?.Phase is "Succeeded" or "Failed")
            {
                continue;
            }
            var latest = pod.Status?.ContainerStatuses?.Select(c => KubeObjectExtensions.Utc(c.State?.Running?.StartedAt)).Max();
            if (pod.Status?.Phase is null or "Pending" && pod.Metadata.CreationTimestamp is { } created && now - created < PendingStartLimit)
            {
                latest = now;
            }
            if (latest is { } at && (!starts.TryGetValue(node, out var known) || at > known))
            {
                starts[node] = at;
            }
        }
        return starts;
    }

    private async Task ActAsync(GuardAction action, Dictionary<string, V1Pod> podObjects, CancellationToken cancellationToken)
    {
        switch (action)
        {
            case MigrateAction migrate:
                await StartMigrationAsync(migrate, podObjects[migrate.Pod.Key], cancellationToken);
                _alertedNodes.Add(migrate.Node);
                break;
            case CannotMoveInTimeAction cannot:
                OomGuardLog.CannotMoveInTime(logger, cannot.Pod.Key, cannot.Reason);
                ControllerMetrics.OomGuardDecision("cannot_move_in_time");
                await PodEventAsync(podObjects[cannot.Pod.Key], EventType.Warning, "OomGuardCannotMoveInTime", cannot.Reason, cancellationToken);
                _alertedNodes.Add(cannot.Node);
                break;
            case NoTargetAction none:
                OomGuardLog.NoTarget(logger, none.Pod.Key, none.Reason);
                ControllerMetrics.OomGuardDecision("no_target");
                await PodEventAsync(podObjects[none.Pod.Key], EventType.Warning, "OomGuardNoTarget", none.Reason, cancellationToken);
                _alertedNodes.Add(none.Node);
                break;
            case NearOwnLimitAction limit:
                OomGuardLog.NearOwnLimit(logger, limit.Pod.Key, limit.Reason);
                ControllerMetrics.OomGuardDecision("near_own_limit");
                await PodEventAsync(podObjects[limit.Pod.Key], EventType.Warning, "OomGuardNearOwnLimit", limit.Reason, cancellationToken);
                _alertedPods.Add(limit.Pod.Key);
                break;
            case RearmAction { PodKey: { } pod }:
                _alertedPods.Remove(pod);
                break;
            case RearmAction rearm:
                _alertedNodes.Remove(rearm.Node);
                break;
        }
    }

    private async Task StartMigrationAsync(MigrateAction migrate, V1Pod pod, CancellationToken cancellationToken)
    {
        var stamp = time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var name = $"oom-guard-{migrate.Pod.Name}";
        name = (name.Length > 240 ? name[..240] : name).TrimEnd('-', '.') + "-" + stamp;
        var migration = new PodMigration
        {
            Metadata = new V1ObjectMeta
            {
                Name = name,
                NamespaceProperty = migrate.Pod.Namespace,
                Labels = new Dictionary<string, string> { [TriggerLabels.Trigger] = TriggerLabels.OomGuard },
                Annotations = new Dictionary<string, string>
                {
                    [ReasonAnnotation] = migrate.Reason,
                    [ForecastAnnotation] = migrate.Forecast.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture),
                    [EstimateAnnotation] = migrate.Estimate.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture),
                    [BytesAnnotation] = migrate.PodBytes.ToString(CultureInfo.InvariantCulture),
                    [NodeAnnotation] = migrate.Node,
                },
            },
            Spec = new PodMigrationSpec
            {
                PodName = migrate.Pod.Name,
                ContainerName = migrate.Pod.Container,
                TargetNode = migrate.Target,
                Mode = MigrationMode.Migrate,
                VerifyWindow = settings.VerifyWindow,
            },
        };
        await api.CreateAsync(PodMigration.Resource, migrate.Pod.Namespace, migration, cancellationToken);
        OomGuardLog.Migrating(logger, migrate.Pod.Key, migrate.Target, name, migrate.Reason);
        ControllerMetrics.OomGuardDecision("migrate");
        ControllerMetrics.OomGuardLead(migrate.Forecast, migrate.Estimate);
        await PodEventAsync(pod, EventType.Normal, "OomGuardMigrating", $"{migrate.Reason} (podmigration {name})", cancellationToken);
    }

    private Task PodEventAsync(V1Pod pod, EventType type, string reason, string message, CancellationToken cancellationToken)
        => events.RecordAsync(new k8s.Models.V1ObjectReference { ApiVersion = "v1", Kind = "Pod", NamespaceProperty = pod.Metadata.NamespaceProperty, Name = pod.Metadata.Name, Uid = pod.Metadata.Uid },
            type, reason, message, cancellationToken);

    private async Task WatchAsync(string node, CancellationToken cancellationToken)
    {
        var delay = WatchRetryInitial;
        var request = new WatchMemoryRequest { Interval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(settings.SampleInterval) };
        request.PodLabels[TriggerLabels.LiveMigrate] = "true";
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var client = await agents.GetAsync(node, cancellationToken);
                await foreach (var sample in client.WatchMemoryAsync(request, cancellationToken))
                {
                    _history.Add(node, sample, time.GetUtcNow());
                    delay = WatchRetryInitial;
                }
            }
            catch (PodMigrateException e) when (!cancellationToken.IsCancellationRequested)
            {
                OomGuardLog.WatchFailed(logger, node, delay, e.Message);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            _history.Forget(node);
            try
            {
                await Task.Delay(delay, time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            delay = ExponentialBackoff.Doubled(delay, WatchRetryMax);
        }
    }

    private static bool IsGuardMigration(PodMigration migration)
        => migration.Metadata.Labels.ValueAt(TriggerLabels.Trigger) == TriggerLabels.OomGuard;

    private static bool IsSchedulable(V1Node? node)
        => node is not null && node.Spec?.Unschedulable != true
           && node.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>What an earlier guard migration teaches: its memory and how long until it was captured (precheck + checkpoint).</summary>
    private static MoveObservation? Observation(PodMigration migration)
    {
        if (!long.TryParse(migration.Metadata.Annotations.ValueAt(BytesAnnotation), NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes)
            || migration.Status?.Timings is not { } timings
            || !KubeDuration.TryParse(timings.GetValueOrDefault("checkpoint"), out var checkpoint))
        {
            return null;
        }
        var precheck = KubeDuration.TryParse(timings.GetValueOrDefault("precheck"), out var p) ? p : TimeSpan.Zero;
        return new MoveObservation(bytes, precheck + checkpoint);
    }
}
