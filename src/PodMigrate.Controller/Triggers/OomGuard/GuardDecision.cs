using System.Globalization;

namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>
/// A node as the guard sees it: its memory readings (working set) and capacity, and what the guard knows of it.
/// <paramref name="SinceStart"/>: the time since the latest container of any pod on it started (or was restored, or is
/// about to start); null: none known. Within <see cref="OomGuardSettings.SettleTime"/> of it the node is settling.
/// </summary>
internal sealed record GuardNode(
    string Name,
    long Capacity,
    IReadOnlyList<MemoryPoint> Points,
    bool Schedulable,
    bool GuardMigrationInFlight,
    bool Alerted,
    TimeSpan? SinceStart = null);

/// <summary>
/// A container of an opted-in pod: its readings, its own limit (0: none), and whether the guard may move it now
/// (<paramref name="NotMovable"/> says why not: a migration of it runs, its cooldown, …); <paramref name="SinceStart"/>: the
/// time since the container started or was restored (null: not known).
/// </summary>
internal sealed record GuardPod(
    string Namespace,
    string Name,
    string Node,
    string Container,
    IReadOnlyList<MemoryPoint> Points,
    long LimitBytes,
    string? NotMovable,
    bool LimitAlerted,
    TimeSpan? SinceStart = null)
{
    public string Key => $"{Namespace}/{Name}";
}

/// <summary>A fit and forecast with the move estimate it was held against.</summary>
internal sealed record NodeOutlook(string Node, GrowthFit Fit, ExhaustionForecast Forecast);

internal abstract record GuardAction(string Node);

/// <summary>Move <paramref name="Pod"/> to <paramref name="Target"/>: the node runs out in <see cref="Forecast"/>, the move takes about <see cref="Estimate"/>.</summary>
internal sealed record MigrateAction(string Node, GuardPod Pod, string Target, TimeSpan Forecast, TimeSpan Estimate, long PodBytes, string Reason) : GuardAction(Node);

/// <summary>The node runs out sooner than any opted-in pod could be moved: reported, nothing started.</summary>
internal sealed record CannotMoveInTimeAction(string Node, GuardPod Pod, TimeSpan Forecast, TimeSpan Estimate, string Reason) : GuardAction(Node);

/// <summary>A move would be in time, but no other node can take the pod without being near its own capacity.</summary>
internal sealed record NoTargetAction(string Node, GuardPod Pod, TimeSpan Forecast, string Reason) : GuardAction(Node);

/// <summary>A container nears its own limit: moving it would not help (the clone gets the same limit); reported.</summary>
internal sealed record NearOwnLimitAction(string Node, GuardPod Pod, TimeSpan Forecast, string Reason) : GuardAction(Node);

/// <summary>
/// The trigger is reached, but a container on the node started (or was restored) less than the settle time ago: its
/// start-up fill looks like growth. Observed, nothing started, nothing reported, the node not marked as warned.
/// </summary>
internal sealed record SettlingAction(string Node, TimeSpan Forecast, TimeSpan SinceStart, string Reason) : GuardAction(Node);

/// <summary>The node's (or a container's) forecast is comfortable again: the next warning may be given.</summary>
internal sealed record RearmAction(string Node, string? PodKey) : GuardAction(Node);

internal sealed record GuardDecisionResult(IReadOnlyList<NodeOutlook> Outlooks, IReadOnlyList<GuardAction> Actions, IReadOnlyDictionary<string, TimeSpan> Estimates);

/// <summary>
/// The OOM guard's decision: from the nodes' and opted-in containers' readings, the earlier moves and the settings,
/// what to do now. Pure: the controller's loop gathers the inputs, calls this, then acts (creates a PodMigration,
/// records an Event).
/// </summary>
internal static class GuardDecision
{
    public static GuardDecisionResult Decide(IReadOnlyList<GuardNode> nodes, IReadOnlyList<GuardPod> pods, IReadOnlyList<MoveObservation> history, OomGuardSettings settings)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(pods);
        ArgumentNullException.ThrowIfNull(settings);
        var outlooks = new List<NodeOutlook>();
        var actions = new List<GuardAction>();
        var estimates = new Dictionary<string, TimeSpan>(StringComparer.Ordinal);
        var podOutlooks = new Dictionary<GuardPod, (GrowthFit Fit, double Level, double Rate, TimeSpan Estimate)>();
        foreach (var pod in pods)
        {
            var (fit, podGrowing) = FitOf(pod.Points, settings);
            var level = pod.Points.Count == 0 ? 0 : Math.Max(fit.LevelNow, pod.Points[^1].Bytes);
            var rate = podGrowing ? fit.BytesPerSecond : 0;
            var estimate = MoveTimeEstimate.Estimate((long)level, history, settings);
            podOutlooks[pod] = (fit, level, rate, estimate);
            estimates[pod.Key] = estimate;
            if (pod.LimitBytes > 0)
            {
                var own = GrowthForecast.Forecast(fit, pod.Points.Count == 0 ? 0 : pod.Points[^1].Bytes, Usable(pod.LimitBytes, settings), rate > 0);
                var lead = estimate * settings.Margin;
                if (own.TimeToExhaustion is { } ownTime && ownTime < lead && !pod.LimitAlerted && !Settling(pod.SinceStart, settings))
                {
                    actions.Add(new NearOwnLimitAction(pod.Node, pod, ownTime, Invariant(
                        $"container {pod.Container} of {pod.Key} reaches its own memory limit ({Mib(pod.LimitBytes)}) in about {Seconds(ownTime)} at {Mib(rate)}/s: moving it would not help, its clone gets the same limit")));
                }
                else if (pod.LimitAlerted && (own.TimeToExhaustion is null || own.TimeToExhaustion > lead * settings.Hysteresis))
                {
                    actions.Add(new RearmAction(pod.Node, pod.Key));
                }
            }
        }

        var views = new Dictionary<string, (GuardNode Node, GrowthFit Fit, ExhaustionForecast Forecast)>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            var (fit, growing) = FitOf(node.Points, settings);
            var forecast = GrowthForecast.Forecast(fit, node.Points.Count == 0 ? 0 : node.Points[^1].Bytes, Usable(node.Capacity, settings), growing);
            outlooks.Add(new NodeOutlook(node.Name, fit, forecast));
            views[node.Name] = (node, fit, forecast);
        }

        foreach (var (node, _, forecast) in views.Values)
        {
            var onNode = pods.Where(p => p.Node == node.Name).ToList();
            var movable = onNode.Where(p => p.NotMovable is null).ToList();
            // The trigger: the forecast is shorter than the margin over the estimate of the cheapest pod that would help.
            if (forecast.TimeToExhaustion is not { } time || node.Capacity <= 0)
            {
                if (node.Alerted)
                {
                    actions.Add(new RearmAction(node.Name, null));
                }
                continue;
            }
            // Pods whose move ends the danger (the node no longer grows, or not within the relief horizon) first, the
            // cheapest of them; then those that only buy time, the most time first.
            var candidates = movable
                .Select(p => (Pod: p, Outlook: podOutlooks[p], After: TimeLeftWithout(forecast, podOutlooks[p].Level, podOutlooks[p].Rate, forecast.Capacity, settings)))
                .Select(c => (c.Pod, c.Outlook, c.After, Relieves: c.After >= settings.ReliefHorizon.TotalSeconds))
                .OrderByDescending(c => c.Relieves)
                .ThenBy(c => c.Relieves ? c.Outlook.Estimate.TotalSeconds : -c.After)
                .ToList();
            var trigger = candidates.Count == 0
                ? settings.DefaultMoveFixed * settings.Margin
                : candidates[0].Outlook.Estimate * settings.Margin;
            if (time >= trigger)
            {
                if (node.Alerted && time > trigger * settings.Hysteresis)
                {
                    actions.Add(new RearmAction(node.Name, null));
                }
                continue;
            }
            if (node.GuardMigrationInFlight || candidates.Count == 0)
            {
                // One guard migration per node at a time; without an opted-in pod there is nothing the guard may move.
                continue;
            }
            if (Settling(node.SinceStart, settings))
            {
                // A container started moments ago: what looks like growth may be its start-up fill. Wait until the settle
                // time is over; the rate then comes from readings after the fill (the recent window), so a pod that filled
                // and stays flat no longer counts as growing, and one that goes on growing is acted on then.
                actions.Add(new SettlingAction(node.Name, time, node.SinceStart!.Value, Invariant(
                    $"node {node.Name} would run out of memory in about {Seconds(time)} ({Mib(forecast.Level)} of {Mib(node.Capacity)}, growing {Mib(forecast.BytesPerSecond)}/s), but a container on it started {Seconds(node.SinceStart.Value)} ago: settling for {Seconds(settings.SettleTime)}")));
                continue;
            }
            // The cheapest relieving pod that can still be moved in time; else the report names the fastest-growing one.
            var inTime = candidates.Where(c => c.Outlook.Estimate < time).ToList();
            if (inTime.Count == 0)
            {
                if (!node.Alerted)
                {
                    var worst = candidates.OrderByDescending(c => c.Outlook.Rate).First();
                    actions.Add(new CannotMoveInTimeAction(node.Name, worst.Pod, time, worst.Outlook.Estimate, Invariant(
                        $"node {node.Name} runs out of memory in about {Seconds(time)} ({Mib(forecast.Level)} of {Mib(node.Capacity)}, {Mib(node.Capacity - forecast.Capacity)} kept in reserve, growing {Mib(forecast.BytesPerSecond)}/s); moving {worst.Pod.Key} ({Mib(worst.Outlook.Level)}) takes about {Seconds(worst.Outlook.Estimate)}: cannot move in time, no migration started")));
                }
                continue;
            }
            var chosen = inTime[0];
            var target = ChooseTarget(node.Name, chosen.Outlook.Level, chosen.Outlook.Rate, chosen.Outlook.Estimate, views.Values.Select(v => (v.Node, v.Forecast)), settings);
            if (target.Node is null)
            {
                if (!node.Alerted)
                {
                    actions.Add(new NoTargetAction(node.Name, chosen.Pod, time, Invariant(
                        $"node {node.Name} runs out of memory in about {Seconds(time)}, but no node can take {chosen.Pod.Key} ({Mib(chosen.Outlook.Level)}): {target.Why}")));
                }
                continue;
            }
            actions.Add(new MigrateAction(node.Name, chosen.Pod, target.Node, time, chosen.Outlook.Estimate, (long)chosen.Outlook.Level, Invariant(
                $"node {node.Name} runs out of memory in about {Seconds(time)} ({Mib(forecast.Level)} of {Mib(node.Capacity)}, {Mib(node.Capacity - forecast.Capacity)} kept in reserve, growing {Mib(forecast.BytesPerSecond)}/s); moving {chosen.Pod.Key} ({Mib(chosen.Outlook.Level)}, growing {Mib(chosen.Outlook.Rate)}/s) takes about {Seconds(chosen.Outlook.Estimate)}: to {target.Node} ({Mib(target.Room)} free)")));
        }
        return new GuardDecisionResult(outlooks, actions, estimates);
    }

    /// <summary>What the forecast runs against: the capacity less the reserve (<see cref="OomGuardSettings.Reserve"/>).</summary>
    internal static long Usable(long capacity, OomGuardSettings settings) => capacity - (long)(capacity * settings.Reserve);

    /// <summary>Within the settle time after a container's start (or restore): growth is observed, not acted on.</summary>
    internal static bool Settling(TimeSpan? sinceStart, OomGuardSettings settings) => sinceStart is { } since && since < settings.SettleTime;

    private static bool Growing(GrowthFit fit, OomGuardSettings settings)
        => fit.IsGrowing(settings.MinimumSamples, settings.MinimumSpan, settings.MinimumGrowth, settings.TStatistic);

    /// <summary>
    /// The fit to forecast from: over the window, with the rate of the recent stretch when that has enough readings, and
    /// growing only when both are, each by the same test (rate, readings, standard errors): growth must be sustained, so a
    /// step, such as a pod starting, is not taken for lasting growth once the recent stretch lies after it. Pure.
    /// </summary>
    internal static (GrowthFit Fit, bool Growing) FitOf(IReadOnlyList<MemoryPoint> points, OomGuardSettings settings)
    {
        var fit = GrowthForecast.Fit(points, settings.Window);
        var recent = GrowthForecast.Fit(points, settings.RecentWindow);
        if (recent.Samples < settings.MinimumSamples)
        {
            return (fit, Growing(fit, settings));
        }
        var growing = Growing(fit, settings) && Growing(recent, settings);
        return (fit with { BytesPerSecond = recent.BytesPerSecond, LevelNow = Math.Max(fit.LevelNow, recent.LevelNow) }, growing);
    }

    /// <summary>How long the node would last without the pod (its memory and its growth); infinity when it stops growing.</summary>
    private static double TimeLeftWithout(ExhaustionForecast forecast, double podLevel, double podRate, long capacity, OomGuardSettings settings)
    {
        var rate = forecast.BytesPerSecond - podRate;
        return rate <= settings.MinimumGrowth ? double.PositiveInfinity : Math.Max(0, capacity - (forecast.Level - podLevel)) / rate;
    }

    /// <summary>
    /// The schedulable node with the most room that, with the pod on it (its memory and its growth), keeps
    /// <see cref="OomGuardSettings.TargetHeadroom"/> free and is not itself forecast to run out within the hysteresis
    /// horizon; none that is itself under watch (a guard migration in flight, or warned).
    /// </summary>
    private static (string? Node, double Room, string Why) ChooseTarget(string source, double podLevel, double podRate, TimeSpan estimate,
        IEnumerable<(GuardNode Node, ExhaustionForecast Forecast)> nodes, OomGuardSettings settings)
    {
        string? best = null;
        double bestRoom = 0;
        var rejected = new List<string>();
        foreach (var (node, forecast) in nodes.OrderBy(n => n.Node.Name, StringComparer.Ordinal))
        {
            if (node.Name == source)
            {
                continue;
            }
            if (!node.Schedulable || node.Capacity <= 0 || node.Points.Count == 0)
            {
                rejected.Add($"{node.Name} not schedulable or not sampled");
                continue;
            }
            if (node.GuardMigrationInFlight || node.Alerted)
            {
                rejected.Add($"{node.Name} is itself under the guard's watch");
                continue;
            }
            var after = forecast.Level + podLevel;
            var room = node.Capacity - forecast.Level;
            if (after > node.Capacity * (1 - settings.TargetHeadroom))
            {
                rejected.Add(Invariant($"{node.Name} would be at {after * 100 / node.Capacity:F0}% of {Mib(node.Capacity)}"));
                continue;
            }
            var rate = forecast.BytesPerSecond + podRate;
            if (rate > settings.MinimumGrowth && (node.Capacity - after) / rate < (estimate * settings.Margin * settings.Hysteresis).TotalSeconds)
            {
                rejected.Add(Invariant($"{node.Name} would run out in {(node.Capacity - after) / rate:F0}s itself"));
                continue;
            }
            if (best is null || room > bestRoom)
            {
                best = node.Name;
                bestRoom = room;
            }
        }
        return (best, bestRoom, rejected.Count == 0 ? "no other node" : string.Join("; ", rejected));
    }

    internal static string Mib(double bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024 * 1024):F0}Mi");

    internal static string Seconds(TimeSpan time) => string.Create(CultureInfo.InvariantCulture, $"{time.TotalSeconds:F1}s");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
