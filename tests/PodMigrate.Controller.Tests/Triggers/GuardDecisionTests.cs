using PodMigrate.Controller.Triggers.OomGuard;

namespace PodMigrate.Controller.Tests.Triggers;

/// <summary>The guard's decision: which pod, where to, when not, and no thrashing.</summary>
[Trait("Category", "Unit")]
public sealed class GuardDecisionTests
{
    private const long Mi = 1024 * 1024;
    private static readonly DateTimeOffset T0 = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    // The arithmetic below forecasts to the capacity itself; the reserve has its own test.
    private static readonly OomGuardSettings Settings = new() { Reserve = 0 };

    private static List<MemoryPoint> Series(double startMib, double mibPerSecond, int seconds = 10)
        => [.. Enumerable.Range(0, seconds + 1).Select(i => new MemoryPoint(T0.AddSeconds(i), (long)((startMib + mibPerSecond * i) * Mi)))];

    private static GuardNode Node(string name, double startMib, double rate, long capacityMib = 768, bool schedulable = true, bool inFlight = false, bool alerted = false)
        => new(name, capacityMib * Mi, Series(startMib, rate), schedulable, inFlight, alerted);

    private static GuardPod Pod(string name, string node, double startMib, double rate, string? notMovable = null, long limitMib = 0, bool limitAlerted = false)
        => new("default", name, node, "main", Series(startMib, rate), limitMib * Mi, notMovable, limitAlerted);

    [Fact]
    public void A_node_running_out_sooner_than_the_move_takes_with_margin_moves_the_growing_pod_to_the_node_with_most_room()
    {
        // node-a: 600 MiB of 768, +10 MiB/s: about 17 s left. The growing pod (200 MiB): 5 s + 200/32 = 11.25 s, x1.5 = 16.9 s.
        var result = GuardDecision.Decide(
            [Node("node-a", 500, 10), Node("node-b", 100, 0), Node("node-c", 300, 0)],
            [Pod("grower", "node-a", 100, 10), Pod("steady", "node-a", 50, 0)],
            [], Settings);
        var migrate = result.Actions.OfType<MigrateAction>().ShouldHaveSingleItem();
        migrate.Pod.Name.ShouldBe("grower");
        migrate.Target.ShouldBe("node-b");
        migrate.Forecast.TotalSeconds.ShouldBe(16.8, 0.1);
        migrate.Estimate.TotalSeconds.ShouldBe(11.25, 0.01);
        migrate.Reason.ShouldContain("node-a runs out of memory in about 16.8s");
    }

    [Fact]
    public void The_forecast_runs_to_the_capacity_less_the_reserve_so_a_move_starts_earlier()
    {
        // node-a: 250 MiB of 768, +5 MiB/s. The default 5 % reserve keeps 38 MiB below the capacity out of the forecast.
        var withReserve = new OomGuardSettings();
        withReserve.Reserve.ShouldBe(0.05);
        var result = GuardDecision.Decide([Node("node-a", 200, 5), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 5)], [], withReserve);
        var forecast = result.Outlooks.Single(o => o.Node == "node-a").Forecast;
        forecast.Capacity.ShouldBe(GuardDecision.Usable(768 * Mi, withReserve));
        forecast.Capacity.ShouldBeLessThan(768 * Mi);
        forecast.TimeToExhaustion!.Value.TotalSeconds.ShouldBe(((768 * 0.95) - 250) / 5.0, 0.2);

        // 580 MiB growing 10 MiB/s: 18.8 s to the capacity, more than the trigger (the grower's 11.25 s x 1.5 = 16.9 s);
        // 15 s to the capacity less the reserve (729.6 MiB): with the reserve the same node triggers from further away.
        var farther = GuardDecision.Decide([Node("node-a", 480, 10), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10)], [], Settings);
        farther.Actions.OfType<MigrateAction>().ShouldBeEmpty("without a reserve 18.8 s are left, more than 16.9 s");
        GuardDecision.Decide([Node("node-a", 480, 10), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10)], [], withReserve)
            .Actions.OfType<MigrateAction>().ShouldHaveSingleItem("with it 15 s are left: the move starts").Reason.ShouldContain("kept in reserve");
        new OomGuardSettings { Reserve = 0.5 }.Validate().ShouldNotBeEmpty();
    }

    [Fact]
    public void Nothing_happens_while_the_forecast_leaves_room()
    {
        var result = GuardDecision.Decide([Node("node-a", 200, 5), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 5)], [], Settings);
        result.Actions.ShouldBeEmpty();
        result.Outlooks.Single(o => o.Node == "node-a").Forecast.TimeToExhaustion!.Value.TotalSeconds.ShouldBe((768 - 250) / 5.0, 0.1);
    }

    [Fact]
    public void The_cheapest_pod_that_relieves_the_node_is_chosen()
    {
        // The node (755 of 768 MiB) grows 1 MiB/s through a pod that has not opted in; moving either opted-in pod gives it
        // minutes; the smaller one is cheaper (11.25 s, in time for the 13 s left).
        var result = GuardDecision.Decide(
            [Node("node-a", 745, 1), Node("node-b", 100, 0)],
            [Pod("big", "node-a", 300, 0), Pod("small", "node-a", 200, 0)],
            [], Settings);
        result.Actions.OfType<MigrateAction>().ShouldHaveSingleItem().Pod.Name.ShouldBe("small");
    }

    [Fact]
    public void A_pod_that_does_not_relieve_the_node_is_passed_over_for_one_that_does()
    {
        // The small pod is flat; all the growth is the big one's: only moving it helps.
        var result = GuardDecision.Decide(
            [Node("node-a", 460, 10), Node("node-b", 100, 0, capacityMib: 2048)],
            [Pod("big", "node-a", 200, 10), Pod("small", "node-a", 20, 0)],
            [], Settings);
        result.Actions.OfType<MigrateAction>().ShouldHaveSingleItem().Pod.Name.ShouldBe("big");
    }

    [Fact]
    public void Growth_too_fast_to_move_in_time_is_reported_and_nothing_is_started()
    {
        // 0.4 s left; the move takes at least 5 s.
        var result = GuardDecision.Decide([Node("node-a", 40, 70), Node("node-b", 100, 0)], [Pod("rocket", "node-a", 20, 70)], [], Settings);
        result.Actions.OfType<MigrateAction>().ShouldBeEmpty();
        var report = result.Actions.OfType<CannotMoveInTimeAction>().ShouldHaveSingleItem();
        report.Pod.Name.ShouldBe("rocket");
        report.Reason.ShouldContain("cannot move in time");
    }

    [Fact]
    public void A_warned_node_is_not_warned_again_until_its_forecast_is_comfortable()
    {
        GuardDecision.Decide([Node("node-a", 40, 70, alerted: true), Node("node-b", 100, 0)], [Pod("rocket", "node-a", 20, 70)], [], Settings)
            .Actions.ShouldBeEmpty();
        // Comfortable again (growth stopped): re-armed.
        GuardDecision.Decide([Node("node-a", 300, 0, alerted: true)], [Pod("rocket", "node-a", 200, 0)], [], Settings)
            .Actions.ShouldHaveSingleItem().ShouldBe(new RearmAction("node-a", null));
        // Still growing, just over the trigger (within the hysteresis band): stays quiet, not re-armed.
        GuardDecision.Decide([Node("node-a", 430, 10, alerted: true), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10)], [], Settings)
            .Actions.ShouldBeEmpty();
    }

    [Fact]
    public void At_most_one_guard_migration_per_node_at_a_time()
        => GuardDecision.Decide([Node("node-a", 500, 10, inFlight: true), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10)], [], Settings)
            .Actions.ShouldBeEmpty();

    [Fact]
    public void A_pod_in_its_cooldown_or_already_migrating_is_not_moved()
        => GuardDecision.Decide([Node("node-a", 500, 10), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10, notMovable: "in its cooldown")], [], Settings)
            .Actions.ShouldBeEmpty();

    [Fact]
    public void Never_to_a_node_near_its_capacity_under_watch_or_not_schedulable()
    {
        var result = GuardDecision.Decide(
            [Node("node-a", 500, 10), Node("node-b", 600, 0), Node("node-c", 100, 0, schedulable: false), Node("node-d", 100, 0, alerted: true)],
            [Pod("grower", "node-a", 100, 10)],
            [], Settings);
        result.Actions.OfType<MigrateAction>().ShouldBeEmpty();
        var none = result.Actions.OfType<NoTargetAction>().ShouldHaveSingleItem();
        none.Reason.ShouldContain("node-b would be at");
        none.Reason.ShouldContain("node-c not schedulable");
        none.Reason.ShouldContain("node-d is itself under the guard's watch");
    }

    [Fact]
    public void Never_to_a_node_that_the_pods_growth_would_itself_exhaust_soon()
    {
        // node-b has room for the pod now (350 + 150 < 85 % of 768) but with the pod's 10 MiB/s it runs out in ~15 s.
        var result = GuardDecision.Decide([Node("node-a", 500, 10), Node("node-b", 350, 0)], [Pod("grower", "node-a", 150, 10)], [], Settings);
        result.Actions.OfType<NoTargetAction>().ShouldHaveSingleItem().Reason.ShouldContain("would run out");
    }

    [Fact]
    public void Earlier_moves_make_the_estimate_and_so_the_trigger()
    {
        // With fast earlier moves (100 MiB in 1 s) the same node is not yet in danger: 16.8 s left, 3 s x 1.5 needed.
        MoveObservation[] fast = [new(100 * Mi, TimeSpan.FromSeconds(1))];
        GuardDecision.Decide([Node("node-a", 500, 10), Node("node-b", 100, 0)], [Pod("grower", "node-a", 100, 10)], fast, Settings)
            .Actions.ShouldBeEmpty();
    }

    [Fact]
    public void A_container_nearing_its_own_limit_is_reported_not_moved()
    {
        // The container grows 10 MiB/s toward its own 256 MiB limit; the node has plenty of room.
        var result = GuardDecision.Decide([Node("node-a", 250, 10, capacityMib: 4096), Node("node-b", 100, 0)], [Pod("capped", "node-a", 150, 10, limitMib: 256)], [], Settings);
        result.Actions.OfType<MigrateAction>().ShouldBeEmpty();
        result.Actions.OfType<NearOwnLimitAction>().ShouldHaveSingleItem().Reason.ShouldContain("its clone gets the same limit");
        GuardDecision.Decide([Node("node-a", 250, 10, capacityMib: 4096)], [Pod("capped", "node-a", 150, 10, limitMib: 256, limitAlerted: true)], [], Settings)
            .Actions.ShouldBeEmpty();
    }

    [Fact]
    public void A_step_is_not_taken_for_lasting_growth()
    {
        // 320 MiB flat for 15 s, then a pod starts: +90 MiB at once, flat after it. The long fit's slope is lifted by the step;
        // the recent stretch shows no growth: no forecast, no move.
        var points = Enumerable.Range(0, 16).Select(i => new MemoryPoint(T0.AddSeconds(i), 320 * Mi))
            .Concat(Enumerable.Range(16, 6).Select(i => new MemoryPoint(T0.AddSeconds(i), 410 * Mi)))
            .ToList();
        GuardDecision.FitOf(points, Settings).Growing.ShouldBeFalse();
        GuardDecision.Decide([new GuardNode("node-a", 768 * Mi, points, true, false, false), Node("node-b", 100, 0)], [Pod("grower", "node-a", 60, 0)], [], Settings)
            .Actions.ShouldBeEmpty();
    }

    /// <summary>320 MiB flat; a pod starts at 10 s and fills 300 MiB in 2 s, then stays flat: the node and the pod, up to <paramref name="until"/> s.</summary>
    private static (GuardNode Node, GuardPod Pod) FillThenFlat(int until, TimeSpan? sinceStart)
    {
        static double Filled(int i) => i <= 10 ? 0 : Math.Min(300, (i - 10) * 150);
        var node = Enumerable.Range(0, until + 1).Select(i => new MemoryPoint(T0.AddSeconds(i), (long)((320 + Filled(i)) * Mi))).ToList();
        var pod = Enumerable.Range(10, until - 9).Select(i => new MemoryPoint(T0.AddSeconds(i), (long)((1 + Filled(i)) * Mi))).ToList();
        return (new GuardNode("node-a", 768 * Mi, node, true, false, false, sinceStart), new GuardPod("default", "filler", "node-a", "main", pod, 0, null, false, sinceStart));
    }

    [Fact]
    public void A_start_up_fill_is_observed_but_not_acted_on_within_the_settle_time()
    {
        // 3 s after the start, mid-fill (150 MiB/s): without a settle time the guard would act (here: it cannot move in time).
        var (node, pod) = FillThenFlat(13, TimeSpan.FromSeconds(3));
        var noSettle = new OomGuardSettings { Reserve = 0, SettleTime = TimeSpan.Zero };
        GuardDecision.Decide([node, Node("node-b", 100, 0)], [pod], [], noSettle).Actions
            .ShouldContain(a => a is MigrateAction || a is CannotMoveInTimeAction, "the fill alone looks like a node about to run out");

        var settling = GuardDecision.Decide([node, Node("node-b", 100, 0)], [pod], [], Settings);
        settling.Actions.ShouldHaveSingleItem().ShouldBeOfType<SettlingAction>().Reason.ShouldContain("started 3.0s ago");
        settling.Outlooks.Single(o => o.Node == "node-a").Forecast.TimeToExhaustion.ShouldNotBeNull("the growth is still observed (metrics)");
    }

    [Fact]
    public void After_the_settle_time_a_fill_that_stayed_flat_is_not_growth_so_nothing_moves()
    {
        // 12 s after the start (22 s): the long window still holds the fill, the recent stretch is flat: not growing.
        var (node, pod) = FillThenFlat(22, TimeSpan.FromSeconds(12));
        GuardDecision.FitOf(node.Points, Settings).Growing.ShouldBeFalse();
        var result = GuardDecision.Decide([node, Node("node-b", 100, 0)], [pod], [], Settings);
        result.Actions.ShouldBeEmpty();
        result.Outlooks.Single(o => o.Node == "node-a").Forecast.TimeToExhaustion.ShouldBeNull();
    }

    [Fact]
    public void Growth_that_goes_on_after_the_settle_time_is_acted_on_then()
    {
        // The first test's node and grower, started 8 s ago: held; 12 s ago: moved (the settle only delays).
        var nodes = new[] { Node("node-a", 500, 10), Node("node-b", 100, 0), Node("node-c", 300, 0) };
        var pods = new[] { Pod("grower", "node-a", 100, 10), Pod("steady", "node-a", 50, 0) };
        GuardDecision.Decide([nodes[0] with { SinceStart = TimeSpan.FromSeconds(8) }, nodes[1], nodes[2]], pods, [], Settings)
            .Actions.ShouldHaveSingleItem().ShouldBeOfType<SettlingAction>();
        GuardDecision.Decide([nodes[0] with { SinceStart = TimeSpan.FromSeconds(12) }, nodes[1], nodes[2]], pods, [], Settings)
            .Actions.OfType<MigrateAction>().ShouldHaveSingleItem().Pod.Name.ShouldBe("grower");
        new OomGuardSettings().SettleTime.ShouldBe(TimeSpan.FromSeconds(10));
        new OomGuardSettings { SettleTime = TimeSpan.FromSeconds(-1) }.Validate().ShouldNotBeEmpty();
    }

    [Fact]
    public void A_container_nearing_its_own_limit_during_its_settle_time_is_not_reported_yet()
    {
        var capped = Pod("capped", "node-a", 150, 10, limitMib: 256);
        GuardDecision.Decide([Node("node-a", 250, 10, capacityMib: 4096)], [capped with { SinceStart = TimeSpan.FromSeconds(2) }], [], Settings)
            .Actions.ShouldBeEmpty();
        GuardDecision.Decide([Node("node-a", 250, 10, capacityMib: 4096)], [capped with { SinceStart = TimeSpan.FromSeconds(30) }], [], Settings)
            .Actions.OfType<NearOwnLimitAction>().ShouldHaveSingleItem();
    }
}
