using PodMigrate.Controller.Agents;

namespace PodMigrate.Controller;

/// <summary>Where a grant applies: every namespace (deploy/'s ClusterRole) or only the controller's own (its Role).</summary>
internal enum PermissionScope
{
    Cluster,
    OwnNamespace,
}

/// <summary>One thing the controller does through the API: a verb on a resource ("pods/binding": a subresource).</summary>
internal sealed record Permission(string ApiGroup, string Resource, string Verb, PermissionScope Scope, string? ResourceName, string UsedBy);

/// <summary>
/// Every Kubernetes API call the controller makes, declared once: deploy/20-rbac.yaml must grant exactly these (a test
/// compares them both ways: a missing verb fails the controller in a real cluster, an extra one is privilege it does not
/// need). A new call in the controller adds its line here. The agent makes no API calls (its ServiceAccount has no
/// role); the node emulator stands in for a kubelet, whose rights come from the Node authorizer, not from deploy/.
/// </summary>
internal static class ControllerPermissions
{
    private const string Group = "podmigrate.io";

    public static IReadOnlyList<Permission> Required { get; } =
    [
        // PodMigrations: the informer (list, watch), the reconciler (get; update: its finalizer), clone-of (create).
        new(Group, "podmigrations", "get", PermissionScope.Cluster, null, "PodMigrationReconciler.ReconcileAsync, FinalizeAsync"),
        new(Group, "podmigrations", "list", PermissionScope.Cluster, null, "Informer<PodMigration>"),
        new(Group, "podmigrations", "watch", PermissionScope.Cluster, null, "Informer<PodMigration>"),
        new(Group, "podmigrations", "update", PermissionScope.Cluster, null, "PodMigrationReconciler: the finalizer added and removed"),
        new(Group, "podmigrations", "create", PermissionScope.Cluster, null, "CloneOfReconciler: the PodMigration of a clone-of pod"),
        new(Group, "podmigrations/status", "update", PermissionScope.Cluster, null, "MigrationJournal.WriteAsync (the phases' status writes)"),

        // Pods: sources read, clones created (or a clone-of pod filled and bound), sources removed and clones adopted.
        new("", "pods", "get", PermissionScope.Cluster, null, "MigrationPrecheck, ClonePodWriter, VerifyPhase, CommitPhase, RollbackPhase, CloneOfReconciler"),
        new("", "pods", "list", PermissionScope.Cluster, null, "Informer<Pod>, KubernetesAgentDirectory (agent pods)"),
        new("", "pods", "watch", PermissionScope.Cluster, null, "Informer<Pod>"),
        new("", "pods", "create", PermissionScope.Cluster, null, "ClonePodWriter.CreateAsync"),
        new("", "pods", "update", PermissionScope.Cluster, null, "ClonePodWriter.FillAsync (clone-of pod's spec)"),
        new("", "pods", "patch", PermissionScope.Cluster, null, "CommitPhase (adoption: the source's owner references)"),
        new("", "pods", "delete", PermissionScope.Cluster, null, "CommitPhase: source after commit; RollbackPhase: clone on rollback"),
        new("", "pods/binding", "create", PermissionScope.Cluster, null, "ClonePodWriter.FillAsync (binds a clone-of pod to the target node)"),

        // Precheck: a pod's claims (ReadWriteOnce volumes pin it) and the nodes to choose among.
        new("", "persistentvolumeclaims", "get", PermissionScope.Cluster, null, "MigrationPrecheck (volume access modes)"),
        new("", "nodes", "get", PermissionScope.Cluster, null, "MigrationPrecheck (target node)"),
        new("", "nodes", "list", PermissionScope.Cluster, null, "MigrationPrecheck (target choice)"),

        // Events on PodMigrations and pods (patch: a repeated event's count).
        new("", "events", "create", PermissionScope.Cluster, null, "EventRecorder"),
        new("", "events", "patch", PermissionScope.Cluster, null, "EventRecorder"),

        // The eviction webhook: the budgets covering an evicted pod (it also gets the pod, lists PodMigrations and pods, creates a PodMigration).
        new("policy", "poddisruptionbudgets", "list", PermissionScope.Cluster, null, "EvictionWebhook (a migration counts against the pod's budgets)"),

        // Its own namespace: the leader-election Lease (create cannot be limited by name), the agents' mTLS Secret.
        new("coordination.k8s.io", "leases", "create", PermissionScope.OwnNamespace, null, "LeaderElector"),
        new("coordination.k8s.io", "leases", "get", PermissionScope.OwnNamespace, "podmigrate-controller", "LeaderElector, ApiServerReachableCheck (/readyz)"),
        new("coordination.k8s.io", "leases", "update", PermissionScope.OwnNamespace, "podmigrate-controller", "LeaderElector"),
        new("", "secrets", "get", PermissionScope.OwnNamespace, AgentConnectionOptions.DefaultTlsSecretName, "AgentCredentials"),

        // The OOM guard (--oom-guard): guard migrations, the nodes' capacity and state, Events on the pods it acts on.
        new(Group, "podmigrations", "create", PermissionScope.Cluster, null, "OomGuardLoop (a PodMigration labelled podmigrate.io/trigger: oom-guard)"),
        new("", "nodes", "list", PermissionScope.Cluster, null, "OomGuardLoop (capacity, Ready, cordoned)"),
        new("", "events", "create", PermissionScope.Cluster, null, "OomGuardLoop (OomGuardMigrating, OomGuardCannotMoveInTime, OomGuardNoTarget, OomGuardNearOwnLimit on pods)"),
    ];
}
