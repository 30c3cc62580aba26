using k8s.Models;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Runtime;

/// <summary>What the runtime needs of any object on the package's models (the project's PodMigration included).</summary>
internal static class KubeObjects
{
    /// <summary>The reference an Event (or an owner reference) uses to point at an object of <paramref name="kind"/>.</summary>
    public static V1ObjectReference Reference<T>(ResourceKind<T> kind, V1ObjectMeta metadata)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(metadata);
        return new V1ObjectReference
        {
            ApiVersion = kind.ApiVersion,
            Kind = kind.Kind,
            NamespaceProperty = metadata.NamespaceProperty,
            Name = metadata.Name,
            Uid = metadata.Uid,
            ResourceVersion = metadata.ResourceVersion,
        };
    }
}
