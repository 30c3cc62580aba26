using k8s.Models;
using PodMigrate.Core.Errors;

namespace PodMigrate.Controller.Runtime;

/// <summary>
/// Which object: namespace and name, the key of an informer's cache and of a work queue. The namespace is null for
/// cluster-scoped kinds. Printed (and parsed) as "namespace/name" or "name", like client-go's cache keys.
/// </summary>
internal readonly record struct ObjectKey : IComparable<ObjectKey>
{
    public ObjectKey(string? @namespace, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Namespace = string.IsNullOrEmpty(@namespace) ? null : @namespace;
        Name = name;
    }

    public string? Namespace { get; }

    public string Name { get; }

    public static ObjectKey Of(V1ObjectMeta metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (string.IsNullOrEmpty(metadata.Name))
        {
            throw PodMigrateException.InvalidArgument("an object without metadata.name has no key");
        }
        return new ObjectKey(metadata.NamespaceProperty, metadata.Name);
    }

    /// <summary>"ns/name" or "name".</summary>
    public static ObjectKey Parse(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return new ObjectKey(null, key);
        }
        if (slash == 0 || slash == key.Length - 1 || key.IndexOf('/', slash + 1) >= 0)
        {
            throw PodMigrateException.InvalidArgument($"\"{key}\" is not an object key (namespace/name or name)");
        }
        return new ObjectKey(key[..slash], key[(slash + 1)..]);
    }

    public int CompareTo(ObjectKey other)
    {
        var byNamespace = string.CompareOrdinal(Namespace, other.Namespace);
        return byNamespace != 0 ? byNamespace : string.CompareOrdinal(Name, other.Name);
    }

    public override string ToString() => Namespace is null ? Name : $"{Namespace}/{Name}";
}
