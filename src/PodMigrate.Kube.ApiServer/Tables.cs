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
        var cells = Printers.TryGetValue(type, out var printer) ? printer.Cells(item, now) : columns.Select(c => Cell(item, c, now)).ToArray();
        var row = new JsonObject { ["cells"] = new JsonArray(cells) };
        row["object"] = includeObject switch
        {
            "None" => null,
            "Object" => item.DeepClone(),
            _ => new JsonObject { ["kind"] = "PartialObjectMetadata", ["apiVersion"] = "meta.k8s.io/v1", ["metadata"] = item["metadata"]?.DeepClone() },
        };
        return row;
    }

    /// <summary>A built-in kind's columns and how a row's cells are computed (after kubectl's own printers).</summary>
    private sealed record Printer(IReadOnlyList<PrinterColumn> Columns, Func<JsonObject, DateTimeOffset, JsonNode?[]> Cells);

    private static PrinterColumn Column(string name, string description, int priority = 0) => new(name, "string", "", priority, "", description);

    private static readonly PrinterColumn CreatedAtColumn = new("Created At", "date", ".metadata.creationTimestamp", 0, "", "CreationTimestamp of the object.");

    private static readonly PrinterColumn[] BindingColumns =
    [
        NameColumn,
        Column("Role", "The role this binding grants"),
        AgeColumn,
        Column("Users", "Users in the binding", 1),
        Column("Groups", "Groups in the binding", 1),
        Column("ServiceAccounts", "ServiceAccounts in the binding", 1),
    ];

    /// <summary>Keyed by the resource types' identity: a CRD can never shadow a built-in printer.</summary>
    private static readonly Dictionary<ResourceType, Printer> Printers = new(ReferenceEqualityComparer.Instance)
    {
        [BuiltInTypes.Pods] = new(
            [
                NameColumn,
                Column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
                Column("Status", "The aggregate status of the containers in this pod."),
                Column("Restarts", "The number of times the containers in this pod have been restarted."),
                AgeColumn,
                Column("IP", "IP address allocated to the pod.", 1),
                Column("Node", "Name of the node assigned to the pod.", 1),
                Column("Nominated Node", "Name of the node nominated by the scheduler.", 1),
                Column("Readiness Gates", "Pod readiness gates.", 1),
            ],
            PodCells),
        [BuiltInTypes.Nodes] = new(
            [
                NameColumn,
                Column("Status", "The status of the node"),
                Column("Roles", "The roles of the node"),
                AgeColumn,
                new("Version", "string", ".status.nodeInfo.kubeletVersion", 0, "", "Kubelet Version reported by the node."),
                Column("Internal-IP", "List of internal IPs.", 1),
            ],
            NodeCells),
        [BuiltInTypes.Events] = new(
            [
                Column("Last Seen", "Time since the event was last seen"),
                Column("Type", "Type of this event"),
                Column("Reason", "Why the action was taken"),
                Column("Object", "The object this event is about"),
                Column("Message", "A human-readable description"),
            ],
            EventCells),
        [BuiltInTypes.Namespaces] = new([NameColumn, Column("Status", "The status of the namespace"), AgeColumn],
            (o, now) => [Name(o), Str(o, ".status.phase") ?? "", Age(o, now)]),
        [BuiltInTypes.Leases] = new([NameColumn, Column("Holder", "The holder of the lease"), AgeColumn],
            (o, now) => [Name(o), Str(o, ".spec.holderIdentity") ?? "", Age(o, now)]),
        [BuiltInTypes.ConfigMaps] = new([NameColumn, Column("Data", "Number of data entries"), AgeColumn],
            (o, now) => [Name(o), Count(o, ".data") + Count(o, ".binaryData"), Age(o, now)]),
        [BuiltInTypes.Secrets] = new([NameColumn, Column("Type", "The type of the secret"), Column("Data", "Number of data entries"), AgeColumn],
            (o, now) => [Name(o), Str(o, ".type") ?? "", Count(o, ".data"), Age(o, now)]),
        [BuiltInTypes.ServiceAccounts] = new([NameColumn, Column("Secrets", "Number of secrets"), AgeColumn],
            (o, now) => [Name(o), Count(o, ".secrets"), Age(o, now)]),
        [BuiltInTypes.PersistentVolumes] = new(
            [
                NameColumn,
                Column("Capacity", "The capacity of the volume"),
                Column("Access Modes", "The access modes of the volume"),
                Column("Reclaim Policy", "What happens to the volume when its claim is released"),
                Column("Status", "The phase of the volume"),
                Column("Claim", "The claim bound to the volume"),
                Column("StorageClass", "The storage class of the volume"),
                Column("VolumeAttributesClass", "The volume attributes class of the volume"),
                Column("Reason", "Why the volume is in its phase"),
                AgeColumn,
                Column("VolumeMode", "Block or Filesystem", 1),
            ],
            PersistentVolumeCells),
        [BuiltInTypes.PersistentVolumeClaims] = new(
            [
                NameColumn,
                Column("Status", "The phase of the claim"),
                Column("Volume", "The volume bound to the claim"),
                Column("Capacity", "The capacity of the bound volume"),
                Column("Access Modes", "The access modes of the bound volume"),
                Column("StorageClass", "The storage class of the claim"),
                Column("VolumeAttributesClass", "The volume attributes class of the claim"),
                AgeColumn,
                Column("VolumeMode", "Block or Filesystem", 1),
            ],
            PersistentVolumeClaimCells),
        [BuiltInTypes.Deployments] = new(
            [
                NameColumn,
                Column("Ready", "Number of the pod with ready state"),
                Column("Up-to-date", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                Column("Available", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                AgeColumn,
                Column("Containers", "Names of each container in the template.", 1),
                Column("Images", "Images referenced by each container in the template.", 1),
                Column("Selector", "Label selector for pods.", 1),
            ],
            DeploymentCells),
        [BuiltInTypes.DaemonSets] = new(
            [
                NameColumn,
                Column("Desired", "The desired number of nodes that should be running the daemon pod."),
                Column("Current", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
                Column("Ready", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
                Column("Up-to-date", "The total number of nodes that are running updated daemon pod"),
                Column("Available", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."),
                Column("Node Selector", "NodeSelector is a selector which must be true for the pod to fit on a node."),
                AgeColumn,
                Column("Containers", "Names of each container in the template.", 1),
                Column("Images", "Images referenced by each container in the template.", 1),
                Column("Selector", "A label query over pods that are managed by the daemon set.", 1),
            ],
            DaemonSetCells),
        [BuiltInTypes.ClusterRoles] = new([NameColumn, CreatedAtColumn], (o, _) => [Name(o), Str(o, ".metadata.creationTimestamp")]),
        [BuiltInTypes.Roles] = new([NameColumn, CreatedAtColumn], (o, _) => [Name(o), Str(o, ".metadata.creationTimestamp")]),
        [BuiltInTypes.ClusterRoleBindings] = new(BindingColumns, BindingCells),
        [BuiltInTypes.RoleBindings] = new(BindingColumns, BindingCells),
        [BuiltInTypes.CustomResourceDefinitions] = new([NameColumn, CreatedAtColumn], (o, _) => [Name(o), Str(o, ".metadata.creationTimestamp")]),
        [BuiltInTypes.PodDisruptionBudgets] = new(
            [
                NameColumn,
                Column("Min Available", "The minimum number of pods that must be available."),
                Column("Max Unavailable", "The maximum number of pods that may be unavailable."),
                Column("Allowed Disruptions", "Calculated number of pods that may be disrupted at this time."),
                AgeColumn,
            ],
            (o, now) => [Name(o), Select(o, ".spec.minAvailable")?.ToString() ?? "N/A", Select(o, ".spec.maxUnavailable")?.ToString() ?? "N/A", Long(o, ".status.disruptionsAllowed"), Age(o, now)]),
    };

    private static IReadOnlyList<PrinterColumn> Columns(ResourceType type)
    {
        if (Printers.TryGetValue(type, out var printer))
        {
            return printer.Columns;
        }
        if (type.Columns is { Count: > 0 } custom)
        {
            return [NameColumn, .. custom];
        }
        return [NameColumn, AgeColumn];
    }

    private static string? Name(JsonObject o) => Str(o, ".metadata.name");

    private static string Age(JsonObject o, DateTimeOffset now) => Age(Str(o, ".metadata.creationTimestamp"), now);

    /// <summary>Entries of a map or a list (0 when absent).</summary>
    private static long Count(JsonObject o, string path) => Select(o, path) switch
    {
        JsonObject map => map.Count,
        JsonArray list => list.Count,
        _ => 0,
    };

    private static long Long(JsonObject o, string path) => Select(o, path).AsLong() ?? 0;

    /// <summary>"k=v,k2=v2" (a map's entries in order), or null when empty.</summary>
    private static string? Pairs(JsonNode? node)
        => node is JsonObject { Count: > 0 } map ? string.Join(',', map.Select(kv => $"{kv.Key}={kv.Value}")) : null;

    private static string Join(JsonObject o, string listPath, string field)
        => string.Join(',', (Select(o, listPath) as JsonArray)?.OfType<JsonObject>().Select(i => i[field]?.ToString()) ?? []);

    private static string AccessModes(JsonNode? modes)
        => string.Join(',', (modes as JsonArray)?.Select(m => m?.ToString() switch
        {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            var other => other,
        }) ?? []);

    private static JsonNode?[] PersistentVolumeCells(JsonObject pv, DateTimeOffset now)
    {
        var claim = Select(pv, ".spec.claimRef") is JsonObject claimRef ? $"{claimRef["namespace"]}/{claimRef["name"]}" : "";
        return
        [
            Name(pv),
            Str(pv, ".spec.capacity.storage") ?? "",
            AccessModes(Select(pv, ".spec.accessModes")),
            Str(pv, ".spec.persistentVolumeReclaimPolicy") ?? "",
            Str(pv, ".status.phase") ?? "",
            claim,
            Str(pv, ".spec.storageClassName") ?? "",
            Str(pv, ".spec.volumeAttributesClassName") ?? "<unset>",
            Str(pv, ".status.reason") ?? "",
            Age(pv, now),
            Str(pv, ".spec.volumeMode") ?? "Filesystem",
        ];
    }

    private static JsonNode?[] PersistentVolumeClaimCells(JsonObject pvc, DateTimeOffset now)
    {
        // Capacity and access modes come from the bound volume (the claim's status): empty until a binder binds it.
        return
        [
            Name(pvc),
            Str(pvc, ".status.phase") ?? "",
            Str(pvc, ".spec.volumeName") ?? "",
            Str(pvc, ".status.capacity.storage") ?? "",
            AccessModes(Select(pvc, ".status.accessModes")),
            Str(pvc, ".spec.storageClassName") ?? "",
            Str(pvc, ".spec.volumeAttributesClassName") ?? "<unset>",
            Age(pvc, now),
            Str(pvc, ".spec.volumeMode") ?? "Filesystem",
        ];
    }

    private static JsonNode?[] DeploymentCells(JsonObject deployment, DateTimeOffset now)
    {
        // spec.replicas defaults to 1 (the real server writes that default into the object; this one stores what it got).
        var desired = Select(deployment, ".spec.replicas").AsLong() ?? 1;
        return
        [
            Name(deployment),
            $"{Long(deployment, ".status.readyReplicas")}/{desired}",
            Long(deployment, ".status.updatedReplicas"),
            Long(deployment, ".status.availableReplicas"),
            Age(deployment, now),
            Join(deployment, ".spec.template.spec.containers", "name"),
            Join(deployment, ".spec.template.spec.containers", "image"),
            Pairs(Select(deployment, ".spec.selector.matchLabels")) ?? "<none>",
        ];
    }

    private static JsonNode?[] DaemonSetCells(JsonObject daemonSet, DateTimeOffset now) =>
    [
        Name(daemonSet),
        Long(daemonSet, ".status.desiredNumberScheduled"),
        Long(daemonSet, ".status.currentNumberScheduled"),
        Long(daemonSet, ".status.numberReady"),
        Long(daemonSet, ".status.updatedNumberScheduled"),
        Long(daemonSet, ".status.numberAvailable"),
        Pairs(Select(daemonSet, ".spec.template.spec.nodeSelector")) ?? "<none>",
        Age(daemonSet, now),
        Join(daemonSet, ".spec.template.spec.containers", "name"),
        Join(daemonSet, ".spec.template.spec.containers", "image"),
        Pairs(Select(daemonSet, ".spec.selector.matchLabels")) ?? "<none>",
    ];

    private static JsonNode?[] BindingCells(JsonObject binding, DateTimeOffset now)
    {
        var subjects = (Select(binding, ".subjects") as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
        string Of(string kind, bool qualified) => string.Join(',', subjects
            .Where(s => s["kind"]?.ToString() == kind)
            .Select(s => qualified ? $"{s["namespace"]}/{s["name"]}" : s["name"]?.ToString()));
        return
        [
            Name(binding),
            $"{Str(binding, ".roleRef.kind")}/{Str(binding, ".roleRef.name")}",
            Age(binding, now),
            Of("User", qualified: false),
            Of("Group", qualified: false),
            Of("ServiceAccount", qualified: true),
        ];
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
