using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Subresources;

/// <summary>
/// POST pods/{name}/binding, as kube-apiserver's BindingREST: sets the node of a pod that has none. The one write of
/// spec.nodeName there is, so it skips the pod strategy's checks (which keep the field immutable once set).
/// </summary>
internal static class PodBinding
{
    public static JsonObject Bind(ObjectStore store, string ns, string name, JsonObject binding)
        => store.Atomically(() => Assign(store, ns, name, binding["target"]?["name"]?.GetValue<string>()));

    private static JsonObject Assign(ObjectStore store, string ns, string name, string? node)
    {
        var pod = store.Stored(BuiltInTypes.Pods, ns, name);
        if (string.IsNullOrEmpty(node))
        {
            throw PodMigrateException.InvalidArgument("Binding target.name is required");
        }
        if (pod["spec"]?["nodeName"]?.GetValue<string>() is { Length: > 0 } bound)
        {
            throw new PodMigrateException(ErrorKind.Aborted, $"Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{bound}\"");
        }
        var updated = (JsonObject)pod.DeepClone();
        ((JsonObject)(updated["spec"] ??= new JsonObject()))["nodeName"] = node;
        store.Write(BuiltInTypes.Pods, ns, name, pod, updated, statusOnly: false, validate: false);
        return SubresourceStatus.Created();
    }
}
