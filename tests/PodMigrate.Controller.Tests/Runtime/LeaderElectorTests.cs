using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Tests.Runtime;

/// <summary>
/// Leader election against the real server in real time. The timings leave seconds of margin for a loaded machine, and
/// the assertions are one-sided where load could only make things later.
/// </summary>
[Trait("Category", "Integration")]
public sealed class LeaderElectorTests
{
    private static LeaderElector Elector(IKubernetesApi api, string identity, TimeSpan leaseDuration, TimeSpan renewDeadline) => new(api, new LeaderElectionOptions
    {
        Namespace = "default",
        LeaseName = "podmigrate-controller",
        Identity = identity,
        LeaseDuration = leaseDuration,
        RenewDeadline = renewDeadline,
        RetryPeriod = TimeSpan.FromMilliseconds(100),
    }, TimeProvider.System, NullLogger<LeaderElector>.Instance);

    [Fact]
    public async Task Of_two_candidates_on_one_lease_exactly_one_leads()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var terms = new Terms();
        var a = Elector(api.Client, "a", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5));
        var b = Elector(api.Client, "b", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5));
        await using var runA = Background.Start(ct => a.RunAsync(terms.Lead("a"), ct), api.Token);
        await using var runB = Background.Start(ct => b.RunAsync(terms.Lead("b"), ct), api.Token);

        await TestPods.EventuallyAsync(() => terms.Started.Count == 1, api.Token);
        var leader = terms.Started[0];
        var (winner, loser) = leader == "a" ? (a, b) : (b, a);
        // Both keep trying for a while (15 retry periods): nobody else starts leading.
        await Task.Delay(1500, api.Token);
        terms.Started.ShouldBe([leader]);
        terms.MaxConcurrent.ShouldBe(1);
        winner.IsLeader.ShouldBeTrue();
        loser.IsLeader.ShouldBeFalse();
        loser.ObservedLeader.ShouldBe(leader);
        var lease = await api.LeaseAsync();
        lease.Spec.HolderIdentity.ShouldBe(leader);
        lease.Spec.LeaseTransitions.ShouldBe(0);
        lease.Spec.LeaseDurationSeconds.ShouldBe(10);
        lease.Spec.RenewTime.ShouldNotBeNull().ShouldBeGreaterThan(lease.Spec.AcquireTime!.Value);
    }

    [Fact]
    public async Task When_the_leader_stops_renewing_it_stops_leading_and_the_other_takes_over_after_the_lease_duration()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var wireA = new Wire();
        using var clientA = api.ClientWith(wireA);
        var terms = new Terms();
        var leaseDuration = TimeSpan.FromSeconds(4);
        var a = Elector(clientA, "a", leaseDuration, TimeSpan.FromSeconds(1.5));
        await using var runA = Background.Start(ct => a.RunAsync(terms.Lead("a"), ct), api.Token);
        await TestPods.EventuallyAsync(() => terms.Started.Count == 1, api.Token);
        var b = Elector(api.Client, "b", leaseDuration, TimeSpan.FromSeconds(1.5));
        await using var runB = Background.Start(ct => b.RunAsync(terms.Lead("b"), ct), api.Token);
        await TestPods.EventuallyAsync(() => b.ObservedLeader == "a", api.Token);

        // a's calls now hang: it cannot renew, and nothing tells it so but its own deadline.
        var partitioned = Stopwatch.StartNew();
        wireA.Partitioned = true;
        await TestPods.EventuallyAsync(() => terms.Stopped.Contains("a"), api.Token);
        a.IsLeader.ShouldBeFalse();
        await TestPods.EventuallyAsync(() => terms.Started.Contains("b"), api.Token);
        var takeover = partitioned.Elapsed;

        // b waited for the lease to expire (less at most one renew interval that a had already spent), and a had stopped first.
        takeover.ShouldBeGreaterThan(leaseDuration - TimeSpan.FromMilliseconds(500));
        terms.Events.ShouldBe(["start a", "stop a", "start b"]);
        terms.MaxConcurrent.ShouldBe(1);
        var lease = await api.LeaseAsync();
        lease.Spec.HolderIdentity.ShouldBe("b");
        lease.Spec.LeaseTransitions.ShouldBe(1);
    }

    [Fact]
    public async Task A_leader_that_stops_releases_the_lease_and_the_other_takes_over_at_once()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var terms = new Terms();
        // A lease duration far beyond the takeover bound: only a release explains a quick takeover.
        var a = Elector(api.Client, "a", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5));
        var runA = Background.Start(ct => a.RunAsync(terms.Lead("a"), ct), api.Token);
        await TestPods.EventuallyAsync(() => terms.Started.Count == 1, api.Token);
        var b = Elector(api.Client, "b", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5));
        await using var runB = Background.Start(ct => b.RunAsync(terms.Lead("b"), ct), api.Token);
        await TestPods.EventuallyAsync(() => b.ObservedLeader == "a", api.Token);

        var stopping = Stopwatch.StartNew();
        await runA.DisposeAsync();
        runA.Task.IsCompletedSuccessfully.ShouldBeTrue();
        terms.Stopped.ShouldBe(["a"]);
        a.IsLeader.ShouldBeFalse();
        await TestPods.EventuallyAsync(() => terms.Started.Contains("b"), api.Token);

        stopping.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(15));
        terms.Events.ShouldBe(["start a", "stop a", "start b"]);
        var lease = await api.LeaseAsync();
        lease.Spec.HolderIdentity.ShouldBe("b");
        lease.Spec.LeaseTransitions.ShouldBe(1);
    }

    [Fact]
    public async Task A_renewal_applied_by_the_server_but_cancelled_by_the_stop_does_not_keep_the_lease_held()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var wire = new Wire();
        using var client = api.ClientWith(wire);
        var terms = new Terms();
        var a = Elector(client, "a", TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5));
        var runA = Background.Start(ct => a.RunAsync(terms.Lead("a"), ct), api.Token);
        await TestPods.EventuallyAsync(() => terms.Started.Count == 1, api.Token);

        // The next renewal reaches the server, which applies it (a new resourceVersion); the stop then cancels the call
        // before its answer is read: the copy the elector holds is one version behind the server's.
        wire.LoseNextPutAnswer();
        await wire.PutAnswerLost.WaitAsync(api.Token);
        var renewed = await api.LeaseAsync();
        renewed.Spec.HolderIdentity.ShouldBe("a");
        await runA.DisposeAsync();
        runA.Task.IsCompletedSuccessfully.ShouldBeTrue();

        // The release read the lease again and cleared the holder, as client-go writes it: empty, duration 1 s.
        var lease = await api.LeaseAsync();
        lease.Spec.HolderIdentity.ShouldBe("");
        lease.Spec.LeaseDurationSeconds.ShouldBe(1);
        long.Parse(lease.Metadata.ResourceVersion, CultureInfo.InvariantCulture)
            .ShouldBeGreaterThan(long.Parse(renewed.Metadata.ResourceVersion, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_leader_whose_lease_is_taken_cancels_its_work_at_once_and_campaigns_again()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var terms = new Terms();
        var a = Elector(api.Client, "a", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5));
        await using var runA = Background.Start(ct => a.RunAsync(terms.Lead("a"), ct), api.Token);
        await TestPods.EventuallyAsync(() => terms.Started.Count == 1, api.Token);

        // Someone else writes the lease (an operator, or a candidate that judged it expired); a renews every 100 ms, so retry on conflict.
        Stopwatch taken;
        while (true)
        {
            var lease = await api.LeaseAsync();
            lease.Spec.HolderIdentity = "intruder";
            lease.Spec.RenewTime = DateTime.UtcNow;
            taken = Stopwatch.StartNew();
            try
            {
                await api.Client.Kubernetes.CoordinationV1.ReplaceNamespacedLeaseAsync(lease, "podmigrate-controller", "default", cancellationToken: api.Token);
                break;
            }
            catch (HttpOperationException e) when (e.Response.StatusCode == System.Net.HttpStatusCode.Conflict)
            {
            }
        }

        await TestPods.EventuallyAsync(() => terms.Stopped.Contains("a"), api.Token);
        // Not at the renew deadline (5 s): at the first renew that sees the lease is someone else's.
        taken.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(4));
        a.IsLeader.ShouldBeFalse();
        a.ObservedLeader.ShouldBe("intruder");
        // It campaigns again, and the intruder's lease is valid: it does not lead.
        await Task.Delay(500, api.Token);
        terms.Events.ShouldBe(["start a", "stop a"]);
        runA.Task.IsCompleted.ShouldBeFalse();
    }

    [Fact]
    [Trait("Category", "Unit")]
    public void Lease_times_are_written_as_MicroTime_with_exactly_six_fractional_digits_even_on_a_whole_second()
    {
        // The API server parses MicroTime with exactly six fractional digits; the package writes a whole second with none.
        var exact = new DateTime(2026, 11, 22, 9, 0, 0, DateTimeKind.Utc);
        KubernetesJson.Serialize(new V1LeaseSpec { RenewTime = exact }).ShouldContain("\"2026-11-22T09:00:00Z\"");
        var wholeSecond = MicroTime.Of(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.FromHours(1)));
        var fraction = MicroTime.Of(new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero).AddTicks(1234567));
        var lease = new V1Lease { Spec = new V1LeaseSpec { AcquireTime = wholeSecond, RenewTime = fraction } };

        var json = JsonDocument.Parse(KubernetesJson.Serialize(lease)).RootElement.GetProperty("spec");

        json.GetProperty("acquireTime").GetString().ShouldBe("2026-11-22T09:00:00.000001Z");
        json.GetProperty("renewTime").GetString().ShouldBe("2026-11-22T10:00:00.123456Z");
        KubernetesJson.Deserialize<V1Lease>(KubernetesJson.Serialize(lease)).Spec.RenewTime.ShouldBe(fraction);
    }

    [Fact]
    [Trait("Category", "Unit")]
    public void Options_that_could_let_two_lead_are_refused()
    {
        Should.Throw<PodMigrateException>(() => Elector(new ControlledApi(null!), "a", TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5))).Kind.ShouldBe(ErrorKind.InvalidArgument);
        Should.Throw<PodMigrateException>(() => Elector(new ControlledApi(null!), "", TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5))).Kind.ShouldBe(ErrorKind.InvalidArgument);
    }

    /// <summary>Who led when: whileLeading records its start, then waits for its token and records its stop.</summary>
    private sealed class Terms
    {
        private readonly Lock _gate = new();
        private readonly List<string> _events = [];
        private int _concurrent;
        private int _maxConcurrent;

        public IReadOnlyList<string> Events
        {
            get
            {
                lock (_gate)
                {
                    return [.. _events];
                }
            }
        }

        public IReadOnlyList<string> Started => [.. Events.Where(e => e.StartsWith("start ", StringComparison.Ordinal)).Select(e => e[6..])];

        public IReadOnlyList<string> Stopped => [.. Events.Where(e => e.StartsWith("stop ", StringComparison.Ordinal)).Select(e => e[5..])];

        public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);

        public Func<CancellationToken, Task> Lead(string identity) => async cancellationToken =>
        {
            lock (_gate)
            {
                _events.Add("start " + identity);
                _maxConcurrent = Math.Max(_maxConcurrent, ++_concurrent);
            }
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            finally
            {
                lock (_gate)
                {
                    _concurrent--;
                    _events.Add("stop " + identity);
                }
            }
        };
    }
}
