using System.Globalization;
using System.Text.Json.Nodes;
using PodMigrate.Kube.Selectors;

namespace PodMigrate.Kube.ApiServer.Policy;

/// <summary>
/// policy/v1 PodDisruptionBudgets as a cluster keeps them: the status the disruption controller writes (which pods a
/// budget covers, how many are healthy, how many it wants, how many may go) and the budget check of the eviction
/// subresource (kube-apiserver's pod eviction REST: checkAndDecrement). Pure: the store calls these under its lock.
/// One deviation: the real controller takes the expected count of a percentage or maxUnavailable budget from the scale
/// of the pods' controllers; this server runs no controllers, so it counts the covered pods (what their scale would be).
/// </summary>
internal static class DisruptionBudgets
{
    /// <summary>policyv1.DisruptionBudgetCause: the cause an eviction's 429 carries.</summary>
    public const string DisruptionBudgetCause = "DisruptionBudget";

    /// <summary>How long an evicted pod stays in status.disruptedPods without being deleted (the controller's DeletionTimeout).</summary>
    public static readonly TimeSpan DeletionTimeout = TimeSpan.FromMinutes(2);

    /// <summary>The eviction subresource refuses when this many evictions are not yet confirmed (MaxDisruptedPodSize).</summary>
    public const int MaxDisruptedPods = 2000;

    public const string ViolationMessage = "Cannot evict pod as it would violate the pod's disruption budget.";

    /// <summary>Whether the budget covers the pod: same namespace and its selector matches (a budget without one covers nothing).</summary>
    public static bool Covers(JsonObject budget, JsonObject pod)
        => Meta(budget, "namespace") == Meta(pod, "namespace")
           && budget["spec"]?["selector"] is JsonObject selector
           && LabelSelectors.Matches(selector, pod["metadata"]?["labels"] as JsonObject);

    /// <summary>The status the disruption controller computes for <paramref name="budget"/> from the pods of its namespace.</summary>
    public static JsonObject Status(JsonObject budget, IEnumerable<JsonObject> podsOfNamespace, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(budget);
        var covered = podsOfNamespace.Where(p => Covers(budget, p)).ToList();
        var byName = covered.ToDictionary(p => Meta(p, "name")!, StringComparer.Ordinal);
        // An eviction's record stays until its pod is being deleted, is gone, or the deletion did not come in time.
        var disrupted = new JsonObject();
        foreach (var (name, at) in budget["status"]?["disruptedPods"] as JsonObject ?? [])
        {
            if (byName.TryGetValue(name, out var pod) && pod["metadata"]?["deletionTimestamp"] is null
                && DateTimeOffset.TryParse(at?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when)
                && when + DeletionTimeout > now)
            {
                disrupted[name] = at!.DeepClone();
            }
        }
        var expected = covered.Count;
        var spec = budget["spec"] as JsonObject;
        long desired;
        if (spec?["maxUnavailable"] is { } maxUnavailable)
        {
            desired = Math.Max(0, expected - Scaled(maxUnavailable, expected));
        }
        else if (spec?["minAvailable"] is { } minAvailable)
        {
            desired = Scaled(minAvailable, expected);
        }
        else
        {
            desired = 0;
        }
        var healthy = covered.Count(p => p["metadata"]?["deletionTimestamp"] is null && !disrupted.ContainsKey(Meta(p, "name")!) && IsReady(p));
        var allowed = expected <= 0 ? 0 : Math.Max(0, healthy - desired);
        var status = new JsonObject { ["observedGeneration"] = budget["metadata"]?["generation"].AsLong() ?? 1 };
        if (disrupted.Count > 0)
        {
            status["disruptedPods"] = disrupted;
        }
        status["disruptionsAllowed"] = allowed;
        status["currentHealthy"] = healthy;
        status["desiredHealthy"] = desired;
        status["expectedPods"] = expected;
        status["conditions"] = new JsonArray(AllowedCondition(budget, allowed > 0, now));
        return status;
    }

    /// <summary>
    /// When the oldest record of a budget status's disruptedPods expires (its eviction + <see cref="DeletionTimeout"/>): the
    /// disruption controller rechecks the budget then. Null without records.
    /// </summary>
    public static DateTimeOffset? NextExpiry(JsonObject? status)
    {
        DateTimeOffset? next = null;
        foreach (var (_, at) in status?["disruptedPods"] as JsonObject ?? [])
        {
            if (DateTimeOffset.TryParse(at?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when)
                && (next is null || when + DeletionTimeout < next))
            {
                next = when + DeletionTimeout;
            }
        }
        return next;
    }

    /// <summary>
    /// The eviction's budget check (checkAndDecrement): 429 when the controller has not seen the budget's spec yet or it
    /// allows no disruption; otherwise one fewer allowed and the pod recorded as disrupted. Returns the budget to write.
    /// </summary>
    public static JsonObject CheckAndDecrement(JsonObject budget, string podName, DateTimeOffset now)
    {
        var name = Meta(budget, "name");
        var status = budget["status"] as JsonObject;
        if ((status?["observedGeneration"].AsLong() ?? 0) < (budget["metadata"]?["generation"].AsLong() ?? 1))
        {
            throw ApiStatusException.TooManyRequests(ViolationMessage, 10, DisruptionBudgetCause, $"The disruption budget {name} is still being processed by the server.");
        }
        var allowed = status?["disruptionsAllowed"].AsLong() ?? 0;
        if (allowed < 0)
        {
            throw ApiStatusException.Of(403, "Forbidden", $"poddisruptionbudgets.policy \"{name}\" is forbidden: pdb disruptions allowed is negative");
        }
        if ((status?["disruptedPods"] as JsonObject)?.Count > MaxDisruptedPods)
        {
            throw ApiStatusException.Of(403, "Forbidden", $"poddisruptionbudgets.policy \"{name}\" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller");
        }
        if (allowed == 0)
        {
            throw ApiStatusException.TooManyRequests(ViolationMessage, 0, DisruptionBudgetCause,
                $"The disruption budget {name} needs {status?["desiredHealthy"].AsLong() ?? 0} healthy pods and has {status?["currentHealthy"].AsLong() ?? 0} currently");
        }
        var updated = (JsonObject)budget.DeepClone();
        var newStatus = (JsonObject)updated["status"]!;
        newStatus["disruptionsAllowed"] = allowed - 1;
        if (allowed - 1 == 0)
        {
            newStatus["conditions"] = new JsonArray(AllowedCondition(budget, false, now));
        }
        var disrupted = newStatus["disruptedPods"] as JsonObject ?? (JsonObject)(newStatus["disruptedPods"] = new JsonObject());
        disrupted[podName] = ObjectStore.Timestamp(now);
        return updated;
    }

    /// <summary>Whether the budget is healthy enough to let a pod that is not Ready go without spending a disruption.</summary>
    public static bool LetsUnhealthyPodGo(JsonObject budget)
    {
        var status = budget["status"] as JsonObject;
        var policy = budget["spec"]?["unhealthyPodEvictionPolicy"]?.GetValue<string>() ?? "IfHealthyBudget";
        var desired = status?["desiredHealthy"].AsLong() ?? 0;
        return policy == "AlwaysAllow" || (policy == "IfHealthyBudget" && (status?["currentHealthy"].AsLong() ?? 0) >= desired && desired > 0);
    }

    public static bool IsReady(JsonObject pod)
        => (pod["status"]?["conditions"] as JsonArray)?.OfType<JsonObject>()
            .Any(c => c["type"]?.GetValue<string>() == "Ready" && c["status"]?.GetValue<string>() == "True") == true;

    /// <summary>An IntOrString of a budget: an integer as it is, "N%" of <paramref name="total"/> rounded up.</summary>
    private static long Scaled(JsonNode value, int total)
    {
        if (value.AsLong() is { } number)
        {
            return number;
        }
        var text = value.GetValue<string>();
        if (text.EndsWith('%') && int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var percent))
        {
            return (long)Math.Ceiling(total * percent / 100.0);
        }
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var plain) ? plain : 0;
    }

    private static JsonObject AllowedCondition(JsonObject budget, bool allowed, DateTimeOffset now)
    {
        var status = allowed ? "True" : "False";
        var previous = (budget["status"]?["conditions"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == "DisruptionAllowed");
        var since = previous?["status"]?.GetValue<string>() == status ? previous["lastTransitionTime"]?.DeepClone() : ObjectStore.Timestamp(now);
        return new JsonObject
        {
            ["type"] = "DisruptionAllowed",
            ["status"] = status,
            ["reason"] = allowed ? "SufficientPods" : "InsufficientPods",
            ["message"] = "",
            ["observedGeneration"] = budget["metadata"]?["generation"].AsLong() ?? 1,
            ["lastTransitionTime"] = since,
        };
    }

    private static string? Meta(JsonObject obj, string field) => obj["metadata"]?[field]?.GetValue<string>();
}
