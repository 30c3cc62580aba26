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

    /// <summary>"namespace/name", the way kubectl and the logs name an object.</summary>
    public static string Key(this IMetadata<V1ObjectMeta> obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        return $"{obj.Metadata?.NamespaceProperty ?? "default"}/{obj.Metadata?.Name}";
    }

    /// <summary>The value under <paramref name="key"/> of a label, annotation or selector map, or null.</summary>
    public static string? ValueAt(this IDictionary<string, string>? map, string key)
        => map is not null && map.TryGetValue(key, out var value) ? value : null;

    /// <summary>The pod's Ready condition is True: the kubelet's verdict that it serves (readiness probes passed).</summary>
    public static bool IsReady(this V1Pod pod)
        => pod?.Status?.Conditions?.Any(c => c.Type == "Ready" && c.Status == "True") == true;

    /// <summary>A time of the package's models (a UTC DateTime) as the DateTimeOffset the project computes with.</summary>
    public static DateTimeOffset? Utc(DateTime? time)
        => time is { } t ? new DateTimeOffset(t.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(t, DateTimeKind.Utc) : t.ToUniversalTime()) : null;
}
