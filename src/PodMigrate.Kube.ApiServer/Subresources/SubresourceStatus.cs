using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer.Subresources;

/// <summary>What a subresource's POST answers when it did what was asked: a Status, Success, 201.</summary>
internal static class SubresourceStatus
{
    public static JsonObject Created()
        => new() { ["kind"] = "Status", ["apiVersion"] = "v1", ["metadata"] = new JsonObject(), ["status"] = "Success", ["code"] = 201 };
}
