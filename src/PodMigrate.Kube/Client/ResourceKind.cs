using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using k8s.Models;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Client;

/// <summary>
/// Where a kind lives in the REST API (group, version, plural, scope) and how its objects and lists are
/// (de)serialized. One value per kind: <see cref="KubeResources"/> has the built-in ones.
/// </summary>
public sealed record ResourceKind<T>(
    string Group,
    string Version,
    string Plural,
    string Kind,
    bool Namespaced,
    JsonTypeInfo<T> TypeInfo,
    JsonTypeInfo<KubeList<T>> ListTypeInfo)
    where T : class
{
    /// <summary>"v1" for the core group, "group/version" otherwise.</summary>
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    /// <summary>The collection path: /api/v1/namespaces/ns/pods, /apis/g/v/plural, …</summary>
    public string CollectionPath(string? ns)
    {
        var root = Group.Length == 0 ? $"/api/{Version}" : $"/apis/{Group}/{Version}";
        if (!Namespaced || ns is null)
        {
            return $"{root}/{Plural}";
        }
        return $"{root}/namespaces/{Uri.EscapeDataString(ns)}/{Plural}";
    }

    public string ObjectPath(string? ns, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Namespaced)
        {
            ArgumentException.ThrowIfNullOrEmpty(ns);
        }
        return $"{CollectionPath(ns)}/{Uri.EscapeDataString(name)}";
    }

    public override string ToString() => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}

/// <summary>The kinds PodMigrate talks about.</summary>
public static class KubeResources
{
    private static readonly KubeClientJsonContext Json = KubeClientJsonContext.Default;

    public static ResourceKind<KubeNamespace> Namespaces { get; } = new("", "v1", "namespaces", "Namespace", false, Json.KubeNamespace, Json.KubeListKubeNamespace);

    public static ResourceKind<CustomResource> CustomResourceDefinitions { get; } =
        Custom("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced: false);

    /// <summary>core/v1 pods on the package's model (<see cref="V1Pod"/>), read and written through the package's JSON contract.</summary>
    public static ResourceKind<V1Pod> V1Pods { get; } = Package<V1Pod>("", "v1", "pods", "Pod", namespaced: true);

    /// <summary>
    /// core/v1 pods as the server's JSON, every field kept (the package's models drop the fields newer than they are): for
    /// an object built from another (the clone pod from its source).
    /// </summary>
    public static ResourceKind<JsonObject> RawPods { get; } = Package<JsonObject>("", "v1", "pods", "Pod", namespaced: true);

    public static ResourceKind<V1Node> V1Nodes { get; } = Package<V1Node>("", "v1", "nodes", "Node", namespaced: false);

    public static ResourceKind<V1Secret> V1Secrets { get; } = Package<V1Secret>("", "v1", "secrets", "Secret", namespaced: true);

    public static ResourceKind<V1Lease> V1Leases { get; } = Package<V1Lease>("coordination.k8s.io", "v1", "leases", "Lease", namespaced: true);

    /// <summary>A kind on the package's models, or a type of ours that embeds them (a custom resource with a V1ObjectMeta).</summary>
    public static ResourceKind<T> Package<T>(string group, string version, string plural, string kind, bool namespaced)
        where T : class
        => new(group, version, plural, kind, namespaced, PackageJson.TypeInfo<T>(), PackageJson.TypeInfo<KubeList<T>>());

    /// <summary>A custom resource (or any kind without a typed model), by group/version/plural.</summary>
    public static ResourceKind<CustomResource> Custom(string group, string version, string plural, string kind, bool namespaced = true)
        => new(group, version, plural, kind, namespaced, Json.CustomResource, Json.KubeListCustomResource);
}
