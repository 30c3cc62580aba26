using System.Text.Json.Nodes;
using PodMigrate.Kube.ApiServer.Policy;

namespace PodMigrate.Kube.ApiServer.Subresources;

/// <summary>
/// POST pods/{name}/eviction, as kube-apiserver's EvictionREST does it (admission has already run): a pod that is
/// terminal, Pending or already being deleted goes without a budget check; a pod covered by more than one budget is
/// refused (500); one budget must allow a disruption (else 429 with its cause), which is spent and the pod recorded in
/// the budget's disruptedPods; then the pod gets the DisruptionTarget condition and is deleted gracefully.
/// A pod that is not Ready may go without spending a disruption when the budget is healthy (unhealthyPodEvictionPolicy).
/// </summary>
internal static class PodEviction
{
    public static JsonObject Evict(ObjectStore store, string ns, string name, JsonObject eviction)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(eviction);
        return store.Atomically(() =>
        {
            var pod = store.Stored(BuiltInTypes.Pods, ns, name);
            var options = eviction["deleteOptions"] as JsonObject;
            var now = store.Now;
            var phase = pod["status"]?["phase"]?.GetValue<string>();
            var ignoresBudgets = pod["metadata"]?["deletionTimestamp"] is not null || phase is "Succeeded" or "Failed" or "Pending";
            if (!ignoresBudgets)
            {
                var budgets = store.StoredObjects(BuiltInTypes.PodDisruptionBudgets).Where(b => DisruptionBudgets.Covers(b, pod)).ToList();
                if (budgets.Count > 1)
                {
                    throw ApiStatusException.Internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
                }
                if (budgets is [var budget] && !(!DisruptionBudgets.IsReady(pod) && DisruptionBudgets.LetsUnhealthyPodGo(budget)))
                {
                    var spent = DisruptionBudgets.CheckAndDecrement(budget, name, now);
                    store.Commit(BuiltInTypes.PodDisruptionBudgets, ns, budget["metadata"]!["name"]!.GetValue<string>(), "MODIFIED", budget, spent);
                }
                MarkDisruptionTarget(store, ns, name, now);
            }
            store.Delete(BuiltInTypes.Pods, ns, name, options);
            return SubresourceStatus.Created();
        });
    }

    /// <summary>The DisruptionTarget condition, once, on the pod as stored now (the budget's commit may have changed nothing of it).</summary>
    private static void MarkDisruptionTarget(ObjectStore store, string ns, string name, DateTimeOffset now)
    {
        var pod = store.Stored(BuiltInTypes.Pods, ns, name);
        var marked = (JsonObject)pod.DeepClone();
        var status = marked["status"] as JsonObject ?? (JsonObject)(marked["status"] = new JsonObject());
        var conditions = status["conditions"] as JsonArray ?? (JsonArray)(status["conditions"] = new JsonArray());
        if (!conditions.OfType<JsonObject>().Any(c => c["type"]?.GetValue<string>() == "DisruptionTarget"))
        {
            conditions.Add(new JsonObject
            {
                ["type"] = "DisruptionTarget",
                ["status"] = "True",
                ["lastTransitionTime"] = ObjectStore.Timestamp(now),
                ["reason"] = "EvictionByEvictionAPI",
                ["message"] = "Eviction API: evicting",
            });
            store.Commit(BuiltInTypes.Pods, ns, name, "MODIFIED", pod, marked);
        }
    }
}
