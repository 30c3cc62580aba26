using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer.Strategies;

/// <summary>
/// One resource's own rules, as kube-apiserver's registry strategies give them (rest.RESTCreateStrategy,
/// RESTUpdateStrategy, RESTGracefulDeleteStrategy): what its storage writes on a create by itself, what a write of the
/// main resource and of the status subresource may change, its checks, how long a deletion waits. Looked up by resource
/// type (<see cref="ResourceStrategies.For"/>); the registry (<see cref="ObjectStore"/>) calls them under its lock, after
/// the rules every kind shares (names, namespaces, metadata, resourceVersion preconditions) and before it commits.
/// </summary>
internal interface IResourceStrategy
{
    /// <summary>Defaults and status of a new object (its metadata is set already); throws to refuse the create.</summary>
    void PrepareForCreate(JsonObject obj, DateTimeOffset now);

    /// <summary>
    /// The object a PUT or PATCH writes, made from the request's <paramref name="body"/> and the stored object: a write of
    /// the main resource keeps the stored status of a kind with a status subresource, a write of the status subresource
    /// (<paramref name="statusOnly"/>) changes nothing but the status. Metadata is the registry's business.
    /// </summary>
    JsonObject PrepareForUpdate(JsonObject body, JsonObject current, bool statusOnly);

    /// <summary>The kind's checks of an update (after <see cref="PrepareForUpdate"/>); throws to refuse it.</summary>
    void ValidateUpdate(string name, JsonObject updated, JsonObject current);

    /// <summary>Seconds a deletion of <paramref name="obj"/> waits (0: at once, unless finalizers remain).</summary>
    long GracePeriod(JsonObject obj, JsonObject? options);
}
