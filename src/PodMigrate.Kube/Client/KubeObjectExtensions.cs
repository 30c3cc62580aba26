using k8s.Models;

namespace PodMigrate.Kube.Client;

/// <summary>What the project reads of the package's models in many places.</summary>
public static class KubeObjectExtensions
{
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
