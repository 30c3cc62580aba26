using k8s.Models;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// What the runtime needs to know about any object of the project's models: its metadata. The models share no base
/// type, so the kinds are listed here once; a kind added to PodMigrate.Kube needs a line here (or its own accessor in
/// <see cref="InformerOptions{T}.MetadataOf"/>).
/// </summary>
internal static class KubeObjects
{
    /// <summary>The accessor for <typeparamref name="T"/>, or null when it is not one of the known models.</summary>
    public static Func<T, ObjectMeta>? MetadataAccessor<T>()
        where T : class
    {
        Func<object, ObjectMeta>? accessor = typeof(T) switch
        {
            var t when t == typeof(Pod) => o => ((Pod)o).Metadata,
            var t when t == typeof(Node) => o => ((Node)o).Metadata,
            var t when t == typeof(KubeNamespace) => o => ((KubeNamespace)o).Metadata,
            var t when t == typeof(CustomResource) => o => ((CustomResource)o).Metadata,
            _ => null,
        };
        return accessor is null ? null : o => accessor(o);
    }

    /// <summary>The reference an Event (or an owner reference) uses to point at an object of <paramref name="kind"/>.</summary>
    public static V1ObjectReference Reference<T>(ResourceKind<T> kind, ObjectMeta metadata)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(metadata);
        return new V1ObjectReference
        {
            ApiVersion = kind.ApiVersion,
            Kind = kind.Kind,
            NamespaceProperty = metadata.Namespace,
            Name = metadata.Name,
            Uid = metadata.Uid,
            ResourceVersion = metadata.ResourceVersion,
        };
    }
}
