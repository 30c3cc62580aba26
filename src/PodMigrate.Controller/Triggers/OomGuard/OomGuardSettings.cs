namespace PodMigrate.Controller.Triggers.OomGuard;

/// <summary>
/// How the OOM guard samples, forecasts and decides (the controller's --oom-guard flags). The defaults are conservative:
/// a move is started when the forecast leaves <see cref="Margin"/> times the estimated move time, never more than one
/// per node at a time, never twice for one pod within <see cref="Cooldown"/>, never to a node that would be near its capacity.
/// </summary>
public sealed class OomGuardSettings
{
    /// <summary>How often each agent samples memory.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How far back the growth rate is fitted.</summary>
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// The rate used is the one over this recent stretch when it has enough readings (a step, e.g. a pod starting, lifts the
    /// long fit's slope for a whole window; growth must show in both).
    /// </summary>
    public TimeSpan RecentWindow { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// After a container starts (or is restored by a migration) anywhere on a node, the node's growth is observed but not
    /// acted on for this long: a workload that allocates its memory at start and then stays flat looks like fast growth
    /// while it fills. Long enough for a fill plus <see cref="RecentWindow"/> (the rate then comes from readings after
    /// it); short, because a real danger is not acted on meanwhile. Zero: no settle time.
    /// </summary>
    public TimeSpan SettleTime { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Growth counts only with this many readings over at least <see cref="MinimumSpan"/>.</summary>
    public int MinimumSamples { get; set; } = 4;

    public TimeSpan MinimumSpan { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Growth slower than this (bytes per second) is not growth.</summary>
    public double MinimumGrowth { get; set; } = 256 * 1024;

    /// <summary>Growth counts only when its rate is this many standard errors above zero (noise is not growth).</summary>
    public double TStatistic { get; set; } = 3;

    /// <summary>
    /// The forecast is the time until the memory reaches its capacity (or a container's limit) less this share of it, not
    /// the capacity itself: the kernel reclaims and stalls before the last page, and a node at 100 % is already in trouble
    /// (the kubelet's own hard eviction threshold keeps 100Mi free by default).
    /// </summary>
    public double Reserve { get; set; } = 0.05;

    /// <summary>A move starts when the forecast is shorter than the estimated move time times this.</summary>
    public double Margin { get; set; } = 1.5;

    /// <summary>After a warning the node is quiet until its forecast exceeds the trigger times this again (or growth stops).</summary>
    public double Hysteresis { get; set; } = 2;

    /// <summary>No second guard migration of the same pod (or its clone) within this.</summary>
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A move relieves a node when the node, without the pod, would last at least this long (or stop growing).</summary>
    public TimeSpan ReliefHorizon { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>A target must keep this share of its capacity free after taking the pod.</summary>
    public double TargetHeadroom { get; set; } = 0.15;

    /// <summary>The estimate without any earlier migration: this fixed time plus the memory at <see cref="DefaultMoveBytesPerSecond"/>.</summary>
    public TimeSpan DefaultMoveFixed { get; set; } = TimeSpan.FromSeconds(5);

    public double DefaultMoveBytesPerSecond { get; set; } = 32 * 1024 * 1024;

    /// <summary>No estimate is below this.</summary>
    public TimeSpan MinimumMove { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How many of the latest guard migrations the estimate learns from.</summary>
    public int MoveHistory { get; set; } = 10;

    /// <summary>The verification window of the guard's PodMigrations (null: the PodMigration default).</summary>
    public string? VerifyWindow { get; set; }

    public IEnumerable<string> Validate()
    {
        if (SampleInterval < TimeSpan.FromMilliseconds(100))
        {
            yield return "the OOM guard's sample interval must be at least 100ms";
        }
        if (Window < SampleInterval * 2)
        {
            yield return "the OOM guard's window must hold at least two samples";
        }
        if (MinimumSamples < 2)
        {
            yield return "the OOM guard needs at least two samples for a rate";
        }
        if (SettleTime < TimeSpan.Zero)
        {
            yield return "the OOM guard's settle time must not be negative";
        }
        if (Margin < 1 || Hysteresis < 1)
        {
            yield return "the OOM guard's margin and hysteresis must be at least 1";
        }
        if (Reserve is < 0 or >= 0.5)
        {
            yield return "the OOM guard's reserve must be within [0, 0.5)";
        }
        if (TargetHeadroom is < 0 or >= 1)
        {
            yield return "the OOM guard's target headroom must be within [0, 1)";
        }
        if (DefaultMoveBytesPerSecond <= 0 || MoveHistory < 1)
        {
            yield return "the OOM guard's default move rate and history must be positive";
        }
    }
}
