using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

internal static class JsonNodes
{
    /// <summary>An integer field whether it was parsed from JSON or set in memory as an int or a long.</summary>
    public static long? AsLong(this JsonNode? node)
    {
        if (node is not JsonValue value)
        {
            return null;
        }
        if (value.TryGetValue<long>(out var l))
        {
            return l;
        }
        return value.TryGetValue<int>(out var i) ? i : null;
    }
}
