using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Strategies;

/// <summary>
/// Pods: Pending on create; spec.nodeName is set once, by the binding subresource (which skips these checks), and never
/// changed by an update; a pod bound to a node is deleted gracefully, so that its kubelet can stop it.
/// </summary>
internal sealed class PodStrategy() : ResourceStrategy(BuiltInTypes.Pods)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now)
        => obj["status"] = new JsonObject { ["phase"] = "Pending", ["qosClass"] = "BestEffort" };

    public override void ValidateUpdate(string name, JsonObject updated, JsonObject current)
    {
        var bound = current["spec"]?["nodeName"]?.GetValue<string>();
        if (bound is { Length: > 0 } && updated["spec"]?["nodeName"]?.GetValue<string>() != bound)
        {
            throw PodMigrateException.InvalidArgument($"Pod \"{name}\" is invalid: spec.nodeName: field is immutable once set");
        }
    }

    /// <summary>Only pods bound to a node wait (for their kubelet): the delete's grace period, else the one already set, else the pod's own, else 30 s.</summary>
    public override long GracePeriod(JsonObject obj, JsonObject? options)
    {
        if (obj["spec"]?["nodeName"] is null)
        {
            return 0;
        }
        return options?["gracePeriodSeconds"].AsLong()
            ?? obj["metadata"]?["deletionGracePeriodSeconds"].AsLong()
            ?? obj["spec"]?["terminationGracePeriodSeconds"].AsLong()
            ?? 30;
    }
}
