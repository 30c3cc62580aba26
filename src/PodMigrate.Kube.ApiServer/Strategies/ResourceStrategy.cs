using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer.Strategies;

/// <summary>
/// The rules of a kind with nothing of its own (ConfigMaps, Events, Leases, Nodes, RBAC, …): a create is stored as sent,
/// the status subresource (when the kind has one) is written apart from the rest, a deletion does not wait.
/// </summary>
internal class ResourceStrategy(ResourceType type) : IResourceStrategy
{
    public ResourceType Type { get; } = type;

    public virtual void PrepareForCreate(JsonObject obj, DateTimeOffset now)
    {
    }

    public virtual JsonObject PrepareForUpdate(JsonObject body, JsonObject current, bool statusOnly)
    {
        ArgumentNullException.ThrowIfNull(body);
        ArgumentNullException.ThrowIfNull(current);
        if (statusOnly)
        {
            var status = (JsonObject)current.DeepClone();
            status["status"] = body["status"]?.DeepClone();
            return status;
        }
        var updated = (JsonObject)body.DeepClone();
        if (Type.HasStatus)
        {
            updated["status"] = current["status"]?.DeepClone();
        }
        return updated;
    }

    public virtual void ValidateUpdate(string name, JsonObject updated, JsonObject current)
    {
    }

    public virtual long GracePeriod(JsonObject obj, JsonObject? options) => 0;

    protected static JsonObject Metadata(JsonObject obj)
        => obj["metadata"] as JsonObject ?? (JsonObject)(obj["metadata"] = new JsonObject());
}

/// <summary>
/// Kinds whose status only their controller writes, never a create: Deployments and DaemonSets (their controllers,
/// absent here), PodDisruptionBudgets (the registry's disruption-budget sync, right after the create is committed) and
/// custom resources with a status subresource. (A Node, unlike these, may be created with its status.)
/// </summary>
internal sealed class StatusFromControllerStrategy(ResourceType type) : ResourceStrategy(type)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now) => obj.Remove("status");
}

/// <summary>PersistentVolumes and PersistentVolumeClaims: Pending until a binder (the PV controller, absent here) binds them.</summary>
internal sealed class PendingUntilBoundStrategy(ResourceType type) : ResourceStrategy(type)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now) => obj["status"] = new JsonObject { ["phase"] = "Pending" };
}

/// <summary>Secrets: the type defaults to Opaque.</summary>
internal sealed class SecretStrategy() : ResourceStrategy(BuiltInTypes.Secrets)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now) => obj["type"] ??= "Opaque";
}

/// <summary>
/// Namespaces: Active on create, with the label the real server's defaulting sets (what namespaceSelectors of webhooks
/// and policies key on). Their deletion (Terminating, then the content goes) is the registry's namespace lifecycle.
/// </summary>
internal sealed class NamespaceStrategy() : ResourceStrategy(BuiltInTypes.Namespaces)
{
    public override void PrepareForCreate(JsonObject obj, DateTimeOffset now)
    {
        obj["status"] = new JsonObject { ["phase"] = "Active" };
        var metadata = Metadata(obj);
        var labels = metadata["labels"] as JsonObject ?? (JsonObject)(metadata["labels"] = new JsonObject());
        labels["kubernetes.io/metadata.name"] = metadata["name"]?.GetValue<string>();
    }
}
