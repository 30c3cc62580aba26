using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Models;
using PodMigrate.Controller.Migrations;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Selectors;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Triggers;

/// <summary>What the eviction webhook answers: let the eviction through, refuse it, or refuse it and start a migration.</summary>
internal abstract record EvictionVerdict(string Outcome)
{
    /// <summary>The outcomes, as the metric podmigrate_eviction_webhook_decisions_total counts them.</summary>
    public const string Allowed = "allowed";
    public const string DeniedMigrating = "denied_migrating";
    public const string DeniedMigrationFailed = "denied_migration_failed";
    public const string StartedMigration = "started_migration";
    public const string BudgetRefused = "budget_refused";

    /// <summary>
    /// Not ours to decide (the API server's own rules follow: the budget check, the graceful delete);
    /// <see cref="BudgetRefused"/> when it is let through only for the server's budget check to refuse it.
    /// </summary>
    public sealed record Allow(string Why, string Outcome = Allowed) : EvictionVerdict(Outcome);

    /// <summary>Refused with this Status (429 TooManyRequests: kubectl drain, the autoscaler and Karpenter retry).</summary>
    public sealed record Deny(string Message, string Outcome) : EvictionVerdict(Outcome);

    /// <summary>Refused, and the pod is moved instead by a PodMigration of this name.</summary>
    public sealed record Migrate(string MigrationName) : EvictionVerdict(StartedMigration);
}

/// <summary>A PodDisruptionBudget as the webhook reads it: whether it covers the pod and what its status allows.</summary>
internal sealed record BudgetView(string Name, bool Covers, bool Observed, long DisruptionsAllowed, Func<V1Pod, bool> Selects);

/// <summary>
/// The eviction webhook's decision, from what it read (decide, then act): the pod, the budgets of its namespace and
/// the PodMigrations there. Only pods that opted in (<see cref="TriggerLabels.LiveMigrate"/>) are answered by a
/// migration. A migration counts against the pod's budgets like an eviction: when a budget allows no disruption the
/// eviction is let through to the API server, whose budget check answers the usual 429 (admission runs before it, so the
/// webhook must not start a migration the budget would forbid); when the migrations already running under a budget use
/// up what it allows, the webhook answers that 429 itself (the server would otherwise let this eviction through).
/// </summary>
internal static class EvictionDecision
{
    public const string BeingMigrated = "being live-migrated";

    public static EvictionVerdict Decide(V1Pod? pod, IReadOnlyList<BudgetView> budgets, IReadOnlyList<PodMigration> migrations, IReadOnlyList<V1Pod> podsOfNamespace)
    {
        ArgumentNullException.ThrowIfNull(budgets);
        ArgumentNullException.ThrowIfNull(migrations);
        if (pod is null)
        {
            return new EvictionVerdict.Allow("the pod does not exist");
        }
        if (!TriggerLabels.OptedIn(pod.Metadata.Labels))
        {
            return new EvictionVerdict.Allow($"the pod has no {TriggerLabels.LiveMigrate}=true label");
        }
        if (pod.Metadata.DeletionTimestamp is not null || pod.Status?.Phase != "Running" || string.IsNullOrEmpty(pod.Spec.NodeName))
        {
            return new EvictionVerdict.Allow($"the pod is {(pod.Metadata.DeletionTimestamp is not null ? "being deleted" : pod.Status?.Phase ?? "without status")}: nothing to move");
        }
        var name = pod.Metadata.Name!;
        var ours = migrations.Where(m => m.Spec.PodName == name && (m.Status?.SourcePodUid is null || m.Status.SourcePodUid == pod.Metadata.Uid)).ToList();
        if (ours.FirstOrDefault(IsActive) is { } running)
        {
            return new EvictionVerdict.Deny($"pod {pod.Key()} is {BeingMigrated} (podmigration {running.Name}: {running.Status?.Phase ?? MigrationPhase.Pending})", EvictionVerdict.DeniedMigrating);
        }
        var migrationName = MigrationName(pod);
        if (ours.FirstOrDefault(m => m.Name == migrationName && m.Status?.Phase is MigrationPhase.Failed or MigrationPhase.RolledBack) is { } failed)
        {
            // No second attempt on every retry of the drain: the pod stays where it is until someone decides.
            return new EvictionVerdict.Deny($"pod {pod.Key()} was not evicted: its live migration (podmigration {failed.Name}) ended {failed.Status!.Phase}: "
                + $"{failed.Status.Message ?? failed.Status.RollbackReason ?? "no reason given"}; it keeps running on node {pod.Spec.NodeName} "
                + $"(delete the podmigration to try again, or remove the {TriggerLabels.LiveMigrate} label to let it be evicted)", EvictionVerdict.DeniedMigrationFailed);
        }
        var covering = budgets.Where(b => b.Covers).ToList();
        if (covering.Count > 1)
        {
            return new EvictionVerdict.Allow("more than one disruption budget covers the pod (the API server refuses the eviction)", EvictionVerdict.BudgetRefused);
        }
        if (covering is [var budget])
        {
            if (!budget.Observed || budget.DisruptionsAllowed <= 0)
            {
                return new EvictionVerdict.Allow($"disruption budget {budget.Name} allows no disruption now (the API server answers 429)", EvictionVerdict.BudgetRefused);
            }
            var moving = migrations.Count(m => IsActive(m) && m.Spec.PodName != name && podsOfNamespace.Any(p => p.Metadata.Name == m.Spec.PodName && budget.Selects(p)));
            if (budget.DisruptionsAllowed - moving <= 0)
            {
                return new EvictionVerdict.Deny($"Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {budget.Name} "
                    + $"allows {budget.DisruptionsAllowed} disruption(s) and {moving} live migration(s) of its pods are running", EvictionVerdict.BudgetRefused);
            }
        }
        return new EvictionVerdict.Migrate(migrationName);
    }

    /// <summary>One eviction-started migration per pod (its uid in the name): replicas and retries agree on it.</summary>
    public static string MigrationName(V1Pod pod)
    {
        var uid = (pod.Metadata.Uid ?? "").Replace("-", "", StringComparison.Ordinal);
        var name = pod.Metadata.Name!;
        var suffix = $"-evict-{uid[..Math.Min(5, uid.Length)]}";
        return (name.Length + suffix.Length > 253 ? name[..(253 - suffix.Length)] : name) + suffix;
    }

    public static bool IsActive(PodMigration migration)
        => migration.Status?.Phase is not (MigrationPhase.Succeeded or MigrationPhase.Failed or MigrationPhase.RolledBack)
           && migration.Metadata.DeletionTimestamp is null;

    /// <summary>A policy/v1 PodDisruptionBudget's spec and status as the decision needs them.</summary>
    public static BudgetView ReadBudget(V1PodDisruptionBudget budget, V1Pod pod)
    {
        ArgumentNullException.ThrowIfNull(budget);
        var selector = budget.Spec?.Selector is { } s ? PackageJson.ToNode(s) : null;
        bool Selects(V1Pod p) => selector is not null
            && LabelSelectors.Matches(selector, key => p.Metadata?.Labels is { } labels && labels.TryGetValue(key, out var value) ? value : null);
        long observed = budget.Status?.ObservedGeneration ?? 0;
        long allowed = budget.Status?.DisruptionsAllowed ?? 0;
        return new BudgetView(budget.Metadata?.Name ?? "", Selects(pod), observed >= (budget.Metadata?.Generation ?? 1), allowed, Selects);
    }
}
