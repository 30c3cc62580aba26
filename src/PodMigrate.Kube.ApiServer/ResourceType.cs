using System.Text.Json.Nodes;

namespace PodMigrate.Kube.ApiServer;

/// <summary>A printer column: what `kubectl get` shows, rendered server-side into a Table.</summary>
internal sealed record PrinterColumn(string Name, string Type, string JsonPath, int Priority = 0, string Format = "", string Description = "");

/// <summary>One served group/version/resource.</summary>
internal sealed record ResourceType(
    string Group,
    string Version,
    string Plural,
    string Singular,
    string Kind,
    bool Namespaced,
    bool HasStatus,
    IReadOnlyList<string> ShortNames,
    IReadOnlyList<string> Categories,
    IReadOnlyList<PrinterColumn>? Columns = null)
{
    /// <summary>The storage key: all versions of a group's resource share one store (no conversion between versions).</summary>
    public string StorageKey => $"{Plural}.{Group}";

    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    public bool IsCustom { get; init; }

    /// <summary>A custom resource's openAPIV3Schema (from its CRD version): what field validation checks. Null for built-ins.</summary>
    public JsonObject? Schema { get; init; }

    /// <summary>"pods", "leases.coordination.k8s.io": how Status messages name a resource.</summary>
    public string QualifiedName => Group.Length == 0 ? Plural : $"{Plural}.{Group}";
}

/// <summary>The built-in kinds this server serves.</summary>
internal static class BuiltInTypes
{
    public const string ApiExtensionsGroup = "apiextensions.k8s.io";

    public const string AppsGroup = "apps";
    public const string RbacGroup = "rbac.authorization.k8s.io";
    public const string NodeGroup = "node.k8s.io";
    public const string PolicyGroup = "policy";
    public const string AdmissionRegistrationGroup = "admissionregistration.k8s.io";

    public static readonly ResourceType Namespaces = new("", "v1", "namespaces", "namespace", "Namespace", false, true, ["ns"], []);
    public static readonly ResourceType Nodes = new("", "v1", "nodes", "node", "Node", false, true, ["no"], []);
    public static readonly ResourceType Pods = new("", "v1", "pods", "pod", "Pod", true, true, ["po"], ["all"]);
    public static readonly ResourceType Events = new("", "v1", "events", "event", "Event", true, false, ["ev"], []);
    public static readonly ResourceType ConfigMaps = new("", "v1", "configmaps", "configmap", "ConfigMap", true, false, ["cm"], []);
    public static readonly ResourceType Secrets = new("", "v1", "secrets", "secret", "Secret", true, false, [], []);
    public static readonly ResourceType ServiceAccounts = new("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, ["sa"], []);
    public static readonly ResourceType PersistentVolumes = new("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false, true, ["pv"], []);
    public static readonly ResourceType PersistentVolumeClaims = new("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true, true, ["pvc"], []);
    public static readonly ResourceType Leases = new("coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, [], []);
    public static readonly ResourceType Deployments = new(AppsGroup, "v1", "deployments", "deployment", "Deployment", true, true, ["deploy"], ["all"]);
    public static readonly ResourceType DaemonSets = new(AppsGroup, "v1", "daemonsets", "daemonset", "DaemonSet", true, true, ["ds"], ["all"]);
    public static readonly ResourceType ClusterRoles = new(RbacGroup, "v1", "clusterroles", "clusterrole", "ClusterRole", false, false, [], []);
    public static readonly ResourceType ClusterRoleBindings = new(RbacGroup, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false, false, [], []);
    public static readonly ResourceType Roles = new(RbacGroup, "v1", "roles", "role", "Role", true, false, [], []);
    public static readonly ResourceType RoleBindings = new(RbacGroup, "v1", "rolebindings", "rolebinding", "RoleBinding", true, false, [], []);
    public static readonly ResourceType RuntimeClasses = new(NodeGroup, "v1", "runtimeclasses", "runtimeclass", "RuntimeClass", false, false, [], []);
    public static readonly ResourceType Services = new("", "v1", "services", "service", "Service", true, true, ["svc"], ["all"]);
    public static readonly ResourceType PodDisruptionBudgets = new(PolicyGroup, "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, true, ["pdb"], []);
    public static readonly ResourceType ValidatingWebhookConfigurations =
        new(AdmissionRegistrationGroup, "v1", "validatingwebhookconfigurations", "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", false, false, [], ["api-extensions"]);
    public static readonly ResourceType CustomResourceDefinitions = new(ApiExtensionsGroup, "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", false, true, ["crd", "crds"], []);

    /// <summary>
    /// Stored as documents: nothing acts on them (no Deployment or DaemonSet controller makes pods, no volume binder binds
    /// claims, RBAC is not enforced). What they get is what the real API server's storage does on its own: defaults of the
    /// status phase, status kept apart from spec, Table printing.
    /// </summary>
    public static IReadOnlyList<ResourceType> All { get; } =
    [
        Namespaces, Nodes, Pods, Events, ConfigMaps, Secrets, ServiceAccounts, PersistentVolumes, PersistentVolumeClaims,
        Leases, Deployments, DaemonSets, ClusterRoles, ClusterRoleBindings, Roles, RoleBindings, RuntimeClasses,
        CustomResourceDefinitions, Services, PodDisruptionBudgets, ValidatingWebhookConfigurations,
    ];

    /// <summary>The served versions of a CustomResourceDefinition, as resource types; empty when the spec is unusable.</summary>
    public static IReadOnlyList<ResourceType> FromCrd(JsonObject crd)
    {
        var spec = crd["spec"] as JsonObject;
        var group = spec?["group"]?.GetValue<string>();
        var names = spec?["names"] as JsonObject;
        var plural = names?["plural"]?.GetValue<string>();
        var kind = names?["kind"]?.GetValue<string>();
        if (string.IsNullOrEmpty(group) || string.IsNullOrEmpty(plural) || string.IsNullOrEmpty(kind) || spec?["versions"] is not JsonArray versions)
        {
            return [];
        }
        var singular = names?["singular"]?.GetValue<string>() ?? kind.ToLowerInvariant();
        var namespaced = (spec["scope"]?.GetValue<string>() ?? "Namespaced") == "Namespaced";
        var shortNames = Strings(names?["shortNames"]);
        var categories = Strings(names?["categories"]);
        var types = new List<ResourceType>();
        foreach (var version in versions.OfType<JsonObject>())
        {
            if (version["served"]?.GetValue<bool>() == false || version["name"]?.GetValue<string>() is not { Length: > 0 } name)
            {
                continue;
            }
            var columns = (version["additionalPrinterColumns"] as JsonArray)?.OfType<JsonObject>()
                .Select(c => new PrinterColumn(
                    c["name"]?.GetValue<string>() ?? "",
                    c["type"]?.GetValue<string>() ?? "string",
                    c["jsonPath"]?.GetValue<string>() ?? "",
                    (int)(c["priority"].AsLong() ?? 0),
                    c["format"]?.GetValue<string>() ?? "",
                    c["description"]?.GetValue<string>() ?? ""))
                .ToList();
            var hasStatus = version["subresources"]?["status"] is JsonObject;
            var schema = version["schema"]?["openAPIV3Schema"] as JsonObject;
            types.Add(new ResourceType(group, name, plural, singular, kind, namespaced, hasStatus, shortNames, categories, columns)
            {
                IsCustom = true,
                Schema = (JsonObject?)schema?.DeepClone(),
            });
        }
        return types;
    }

    private static List<string> Strings(JsonNode? node)
        => node is JsonArray array ? array.Select(n => n?.GetValue<string>()).OfType<string>().ToList() : [];
}
