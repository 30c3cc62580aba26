using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>
/// Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for (Accept: application/json;as=Table;…),
/// with the columns kubectl's own printers show for the built-in kinds and a CRD's additionalPrinterColumns.
/// </summary>
internal static class Tables
{
    private static readonly PrinterColumn NameColumn = new("Name", "string", ".metadata.name", 0, "name", "Name must be unique within a namespace.");
    private static readonly PrinterColumn AgeColumn = new("Age", "date", ".metadata.creationTimestamp", 0, "", "CreationTimestamp of the object.");

    public static bool Wanted(string? accept) => accept is not null && accept.Contains("as=Table", StringComparison.Ordinal);

    public static JsonObject Render(ResourceType type, IEnumerable<JsonObject> items, string resourceVersion, string? includeObject, DateTimeOffset now, bool withColumns = true)
    {
        var columns = Columns(type);
        var table = new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion },
        };
        if (withColumns)
        {
            table["columnDefinitions"] = new JsonArray(columns.Select(c => (JsonNode?)new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type == "date" ? "string" : c.Type,
                ["format"] = c.Format,
                ["description"] = c.Description,
                ["priority"] = c.Priority,
            }).ToArray());
        }
        table["rows"] = new JsonArray(items.Select(item => (JsonNode?)Row(type, columns, item, includeObject, now)).ToArray());
        return table;
    }

    private static JsonObject Row(ResourceType type, IReadOnlyList<PrinterColumn> columns, JsonObject item, string? includeObject, DateTimeOffset now)
    {
        var cells = type == BuiltInTypes.Pods ? PodCells(item, now)
            : type == BuiltInTypes.Nodes ? NodeCells(item, now)
            : type == BuiltInTypes.Events ? EventCells(item, now)
            : columns.Select(c => Cell(item, c, now)).ToArray();
        var row = new JsonObject { ["cells"] = new JsonArray(cells) };
        row["object"] = includeObject switch
        {
            "None" => null,
            "Object" => item.DeepClone(),
            _ => new JsonObject { ["kind"] = "PartialObjectMetadata", ["apiVersion"] = "meta.k8s.io/v1", ["metadata"] = item["metadata"]?.DeepClone() },
        };
        return row;
    }

    private static IReadOnlyList<PrinterColumn> Columns(ResourceType type)
    {
        if (type == BuiltInTypes.Pods)
        {
            return
            [
                NameColumn,
                new("Ready", "string", "", 0, "", "The aggregate readiness state of this pod for accepting traffic."),
                new("Status", "string", "", 0, "", "The aggregate status of the containers in this pod."),
                new("Restarts", "string", "", 0, "", "The number of times the containers in this pod have been restarted."),
                AgeColumn,
                new("IP", "string", "", 1, "", "IP address allocated to the pod."),
                new("Node", "string", "", 1, "", "Name of the node assigned to the pod."),
                new("Nominated Node", "string", "", 1, "", "Name of the node nominated by the scheduler."),
                new("Readiness Gates", "string", "", 1, "", "Pod readiness gates."),
            ];
        }
        if (type == BuiltInTypes.Nodes)
        {
            return
            [
                NameColumn,
                new("Status", "string", "", 0, "", "The status of the node"),
                new("Roles", "string", "", 0, "", "The roles of the node"),
                AgeColumn,
                new("Version", "string", ".status.nodeInfo.kubeletVersion", 0, "", "Kubelet Version reported by the node."),
                new("Internal-IP", "string", "", 1, "", "List of internal IPs."),
            ];
        }
        if (type == BuiltInTypes.Events)
        {
            return
            [
                new("Last Seen", "string", "", 0, "", "Time since the event was last seen"),
                new("Type", "string", ".type", 0, "", "Type of this event"),
                new("Reason", "string", ".reason", 0, "", "Why the action was taken"),
                new("Object", "string", "", 0, "", "The object this event is about"),
                new("Message", "string", ".message", 0, "", "A human-readable description"),
            ];
        }
        if (type == BuiltInTypes.Namespaces)
        {
            return [NameColumn, new("Status", "string", ".status.phase", 0, "", "The status of the namespace"), AgeColumn];
        }
        if (type == BuiltInTypes.Leases)
        {
            return [NameColumn, new("Holder", "string", ".spec.holderIdentity", 0, "", "The holder of the lease"), AgeColumn];
        }
        if (type.Columns is { Count: > 0 } custom)
        {
            return [NameColumn, .. custom];
        }
        return [NameColumn, AgeColumn];
    }

    private static JsonNode?[] PodCells(JsonObject pod, DateTimeOffset now)
    {
        var containers = (pod["spec"]?["containers"] as JsonArray)?.Count ?? 0;
        var statuses = (pod["status"]?["containerStatuses"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
        var ready = statuses.Count(s => s["ready"]?.GetValue<bool>() == true);
        var restarts = statuses.Sum(s => s["restartCount"].AsLong() ?? 0);
        var phase = pod["status"]?["reason"]?.GetValue<string>() ?? pod["status"]?["phase"]?.GetValue<string>() ?? "Unknown";
        if (pod["metadata"]?["deletionTimestamp"] is not null)
        {
            phase = "Terminating";
        }
        return
        [
            Str(pod, ".metadata.name"),
            $"{ready}/{containers}",
            phase,
            restarts.ToString(CultureInfo.InvariantCulture),
            Age(Str(pod, ".metadata.creationTimestamp"), now),
            Str(pod, ".status.podIP") ?? "<none>",
            Str(pod, ".spec.nodeName") ?? "<none>",
            Str(pod, ".status.nominatedNodeName") ?? "<none>",
            "<none>",
        ];
    }

    private static JsonNode?[] NodeCells(JsonObject node, DateTimeOffset now)
    {
        var readyCondition = (node["status"]?["conditions"] as JsonArray)?.OfType<JsonObject>().FirstOrDefault(c => c["type"]?.GetValue<string>() == "Ready");
        var status = readyCondition?["status"]?.GetValue<string>() switch
        {
            "True" => "Ready",
            "False" => "NotReady",
            _ => "Unknown",
        };
        if (node["spec"]?["unschedulable"]?.GetValue<bool>() == true)
        {
            status += ",SchedulingDisabled";
        }
        var roles = (node["metadata"]?["labels"] as JsonObject)?
            .Select(l => l.Key)
            .Where(k => k.StartsWith("node-role.kubernetes.io/", StringComparison.Ordinal))
            .Select(k => k["node-role.kubernetes.io/".Length..])
            .ToList() ?? [];
        var internalIp = (node["status"]?["addresses"] as JsonArray)?.OfType<JsonObject>()
            .FirstOrDefault(a => a["type"]?.GetValue<string>() == "InternalIP")?["address"]?.GetValue<string>();
        return
        [
            Str(node, ".metadata.name"),
            status,
            roles.Count == 0 ? "<none>" : string.Join(',', roles),
            Age(Str(node, ".metadata.creationTimestamp"), now),
            Str(node, ".status.nodeInfo.kubeletVersion") ?? "",
            internalIp ?? "<none>",
        ];
    }

    private static JsonNode?[] EventCells(JsonObject ev, DateTimeOffset now)
    {
        var lastSeen = Str(ev, ".lastTimestamp") ?? Str(ev, ".eventTime") ?? Str(ev, ".metadata.creationTimestamp");
        var kind = Str(ev, ".involvedObject.kind")?.ToLowerInvariant();
        return
        [
            Age(lastSeen, now),
            Str(ev, ".type") ?? "",
            Str(ev, ".reason") ?? "",
            $"{kind}/{Str(ev, ".involvedObject.name")}",
            Str(ev, ".message") ?? "",
        ];
    }

    private static JsonNode? Cell(JsonObject item, PrinterColumn column, DateTimeOffset now)
    {
        var node = Select(item, column.JsonPath);
        if (node is null)
        {
            return null;
        }
        if (column.Type == "date")
        {
            return node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? Age(v.GetValue<string>(), now) : null;
        }
        return node.DeepClone();
    }

    private static string? Str(JsonObject item, string path)
        => Select(item, path) is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>The JSONPath subset printer columns use in practice: .a.b.c and .a[0].b.</summary>
    private static JsonNode? Select(JsonNode? node, string path)
    {
        foreach (var raw in path.TrimStart('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            var part = raw;
            int? index = null;
            var bracket = part.IndexOf('[', StringComparison.Ordinal);
            if (bracket > 0 && part.EndsWith(']') && int.TryParse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture, out var i))
            {
                index = i;
                part = part[..bracket];
            }
            node = node is JsonObject o && o.TryGetPropertyValue(part, out var child) ? child : null;
            if (index is { } at)
            {
                node = node is JsonArray a && at < a.Count ? a[at] : null;
            }
        }
        return node;
    }

    /// <summary>kubectl's human durations: 45s, 3m12s, 95m, 5h3m, 30h, 3d4h, 120d, 2y.</summary>
    public static string Age(string? timestamp, DateTimeOffset now)
    {
        if (timestamp is null || !DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var then))
        {
            return "<unknown>";
        }
        var d = now - then;
        if (d < TimeSpan.Zero)
        {
            d = TimeSpan.Zero;
        }
        var s = (long)d.TotalSeconds;
        return s switch
        {
            < 120 => $"{s}s",
            < 600 => s % 60 == 0 ? $"{s / 60}m" : $"{s / 60}m{s % 60}s",
            < 3 * 3600 => $"{s / 60}m",
            < 8 * 3600 => (s / 60) % 60 == 0 ? $"{s / 3600}h" : $"{s / 3600}h{(s / 60) % 60}m",
            < 48 * 3600 => $"{s / 3600}h",
            < 8 * 86400 => (s / 3600) % 24 == 0 ? $"{s / 86400}d" : $"{s / 86400}d{(s / 3600) % 24}h",
            < 2 * 365 * 86400 => $"{s / 86400}d",
            _ => $"{s / (365 * 86400)}y",
        };
    }
}
