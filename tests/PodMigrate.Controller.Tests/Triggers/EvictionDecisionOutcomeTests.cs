using k8s.Models;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Triggers;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Tests.Triggers;

/// <summary>The eviction webhook's outcome, as podmigrate_eviction_webhook_decisions_total counts it, for each kind of answer.</summary>
[Trait("Category", "Unit")]
public sealed class EvictionDecisionOutcomeTests
{
    [Fact]
    public void A_plain_pod_is_allowed()
        => EvictionDecision.Decide(V1Pod(optIn: false), [], [], []).Outcome.ShouldBe(EvictionVerdict.Allowed);

    [Fact]
    public void An_opted_in_pod_starts_a_migration()
        => EvictionDecision.Decide(V1Pod(), [], [], []).Outcome.ShouldBe(EvictionVerdict.StartedMigration);

    [Fact]
    public void A_pod_being_migrated_is_denied_as_migrating()
        => EvictionDecision.Decide(V1Pod(), [], [Migration("web-1", MigrationPhase.Checkpointing)], []).Outcome.ShouldBe(EvictionVerdict.DeniedMigrating);

    [Fact]
    public void A_pod_whose_migration_rolled_back_is_denied_with_that_outcome()
    {
        var pod = V1Pod();
        EvictionDecision.Decide(pod, [], [Migration("web-1", MigrationPhase.RolledBack, EvictionDecision.MigrationName(pod))], [])
            .Outcome.ShouldBe(EvictionVerdict.DeniedMigrationFailed);
    }

    [Fact]
    public void A_budget_allowing_no_disruption_is_counted_as_budget_refused_though_the_server_answers_the_429()
    {
        var verdict = EvictionDecision.Decide(V1Pod(), [new BudgetView("web", Covers: true, Observed: true, DisruptionsAllowed: 0, _ => true)], [], []);
        verdict.ShouldBeOfType<EvictionVerdict.Allow>();
        verdict.Outcome.ShouldBe(EvictionVerdict.BudgetRefused);
    }

    [Fact]
    public void A_budget_used_up_by_running_migrations_is_budget_refused()
    {
        var verdict = EvictionDecision.Decide(
            V1Pod(),
            [new BudgetView("web", Covers: true, Observed: true, DisruptionsAllowed: 1, _ => true)],
            [Migration("web-2", MigrationPhase.Checkpointing)],
            [V1Pod("web-2")]);
        verdict.ShouldBeOfType<EvictionVerdict.Deny>();
        verdict.Outcome.ShouldBe(EvictionVerdict.BudgetRefused);
    }

    private static V1Pod V1Pod(string name = "web-1", bool optIn = true) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = name,
            NamespaceProperty = "default",
            Uid = $"uid-{name}",
            Labels = optIn ? new Dictionary<string, string> { [TriggerLabels.LiveMigrate] = "true" } : new Dictionary<string, string>(),
        },
        Spec = new V1PodSpec { NodeName = "node-a" },
        Status = new V1PodStatus { Phase = "Running" },
    };

    private static PodMigration Migration(string podName, string phase, string? name = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name ?? $"{podName}-move", NamespaceProperty = "default" },
        Spec = new PodMigrationSpec { PodName = podName },
        Status = new PodMigrationStatus { Phase = phase },
    };
}
