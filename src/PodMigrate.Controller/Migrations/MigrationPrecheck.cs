using System.Globalization;
using System.Text.Json;
using k8s;
using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Migrations;

/// <summary>What the precheck established: the migration may go ahead with these.</summary>
internal sealed record PrecheckResult(V1Pod SourcePod, string SourceNode, string TargetNode, string ContainerName);

/// <summary>
/// Everything that must hold before a source is frozen. Each refusal is a <see cref="MigrationRefusedException"/> that
/// says which condition failed and why; nothing has been touched yet, so a refusal simply fails the migration.
/// Errors reaching the API server itself propagate (the work queue retries them).
/// </summary>
/// <remarks>
/// The source pod is read from the informer's cache (<see cref="CacheFirstReader{T}"/>); nodes and claims are GETs: the
/// controller runs no informer on them, and the precheck reads them once per migration.
/// </remarks>
internal sealed class MigrationPrecheck(IKubernetesApi api, CacheFirstReader<V1Pod> pods, IAgentDirectory agents)
{
    public async Task<PrecheckResult> RunAsync(PodMigration migration, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var pod = await GetSourcePodAsync(migration.Namespace, settings.PodName, cancellationToken);
        var sourceNode = pod.Spec.NodeName!;
        var container = ChooseContainer(pod, settings.ContainerName);
        if (pod.Metadata.Annotations?.ContainsKey(MigrationAnnotations.CloneOf) == true && pod.Spec.SchedulingGates is { Count: > 0 })
        {
            throw new MigrationRefusedException("SourceNotRunning", $"pod {pod.Key()} is itself an unfilled clone-of pod");
        }
        await CheckVolumesAsync(pod, settings, cancellationToken);

        var sourceAgent = await HealthyAgentAsync(sourceNode, "source", cancellationToken);
        string targetNode;
        NodeInfo targetAgent;
        if (settings.TargetNode is { } requested)
        {
            if (requested == sourceNode)
            {
                throw new MigrationRefusedException("InvalidTarget", $"target node {requested} is the node pod {pod.Key()} already runs on");
            }
            await CheckNodeSchedulableAsync(requested, cancellationToken);
            targetAgent = await HealthyAgentAsync(requested, "target", cancellationToken);
            CheckCompatible(sourceAgent, targetAgent);
            CheckRestoreRuntime(targetAgent, requested, settings);
            targetNode = requested;
        }
        else
        {
            (targetNode, targetAgent) = await ChooseTargetAsync(sourceNode, sourceAgent, settings, cancellationToken);
        }
        CheckShare(sourceAgent, sourceNode);
        CheckShare(targetAgent, targetNode);
        return new PrecheckResult(pod, sourceNode, targetNode, container);
    }

    private async Task<V1Pod> GetSourcePodAsync(string ns, string name, CancellationToken cancellationToken)
    {
        var pod = await pods.GetAsync(ns, name, cancellationToken);
        if (pod is null || pod.Metadata.DeletionTimestamp is not null || string.IsNullOrEmpty(pod.Spec.NodeName) || pod.Status?.Phase != "Running")
        {
            // A refusal is final: it rests on the server's answer, not on a cached copy that may lag (a pod just started).
            pod = await pods.GetFreshAsync(ns, name, cancellationToken);
        }
        if (pod is null)
        {
            throw new MigrationRefusedException("SourceNotFound", $"pod {ns}/{name} does not exist");
        }
        if (pod.Metadata.DeletionTimestamp is not null)
        {
            throw new MigrationRefusedException("SourceNotRunning", $"pod {pod.Key()} is being deleted");
        }
        if (string.IsNullOrEmpty(pod.Spec.NodeName))
        {
            throw new MigrationRefusedException("SourceNotRunning", $"pod {pod.Key()} is not bound to a node");
        }
        if (pod.Status?.Phase != "Running")
        {
            throw new MigrationRefusedException("SourceNotRunning", $"pod {pod.Key()} is {pod.Status?.Phase ?? "without status"}, not Running");
        }
        return pod;
    }

    private static string ChooseContainer(V1Pod pod, string? requested)
    {
        if (requested is not null)
        {
            if (!pod.Spec.Containers.Any(c => c.Name == requested))
            {
                throw new MigrationRefusedException("SourceNotFound", $"pod {pod.Key()} has no container {requested}");
            }
            if (pod.Spec.Containers.Count > 1)
            {
                throw new MigrationRefusedException("Unsupported", $"pod {pod.Key()} has {pod.Spec.Containers.Count} containers: only single-container pods move in this version");
            }
            return requested;
        }
        return pod.Spec.Containers.Count == 1
            ? pod.Spec.Containers[0].Name
            : throw new MigrationRefusedException("Unsupported", $"pod {pod.Key()} has {pod.Spec.Containers.Count} containers: only single-container pods move in this version");
    }

    /// <summary>
    /// A volume moves only if the target can mount the same data: NFS and ReadWriteMany/ReadOnlyMany claims are
    /// remounted; configMap, secret, downwardAPI and projected volumes are rebuilt from the API. Node-local data
    /// (hostPath, emptyDir) would silently stay behind, and a ReadWriteOnce claim cannot be attached to the target
    /// while the (frozen) source still holds it, so those are refused with the reason.
    /// </summary>
    private async Task CheckVolumesAsync(V1Pod pod, MigrationSettings settings, CancellationToken cancellationToken)
    {
        foreach (var volume in pod.Spec.Volumes ?? [])
        {
            if (volume.HostPath is not null)
            {
                throw new MigrationRefusedException("VolumeNotMovable", $"volume {volume.Name} of pod {pod.Key()} is a hostPath: its data stays on node {pod.Spec.NodeName}");
            }
            if (volume.EmptyDir is not null)
            {
                throw new MigrationRefusedException("VolumeNotMovable", $"volume {volume.Name} of pod {pod.Key()} is an emptyDir: its data is node-local and is not part of the checkpoint");
            }
            if (volume.PersistentVolumeClaim is { } claimRef)
            {
                var modes = await ClaimAccessModesAsync(pod, claimRef.ClaimName, cancellationToken);
                var shared = modes.Contains("ReadWriteMany") || modes.Contains("ReadOnlyMany");
                if (!shared)
                {
                    var why = settings.IsClone
                        ? "a clone and its source would both need it"
                        : "the target cannot attach it while the frozen source still holds it";
                    throw new MigrationRefusedException("VolumeNotMovable", $"volume {volume.Name} of pod {pod.Key()} uses claim {claimRef.ClaimName} with access modes [{string.Join(",", modes)}]: {why}; use a ReadWriteMany (e.g. NFS) claim");
                }
            }
        }
    }

    private async Task<HashSet<string>> ClaimAccessModesAsync(V1Pod pod, string claim, CancellationToken cancellationToken)
    {
        V1PersistentVolumeClaim pvc;
        var ns = pod.Metadata.NamespaceProperty;
        try
        {
            pvc = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNamespacedPersistentVolumeClaimAsync(claim, ns, cancellationToken: t),
                $"get persistentvolumeclaim {ns}/{claim}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw new MigrationRefusedException("VolumeNotMovable", $"pod {pod.Key()} uses claim {claim}, which does not exist");
        }
        return new HashSet<string>(pvc.Spec?.AccessModes ?? [], StringComparer.Ordinal);
    }

    private async Task CheckNodeSchedulableAsync(string name, CancellationToken cancellationToken)
    {
        V1Node node;
        try
        {
            node = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ReadNodeAsync(name, cancellationToken: t), $"get node {name}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            throw new MigrationRefusedException("InvalidTarget", $"target node {name} does not exist");
        }
        CheckNodeSchedulable(node);
    }

    private static void CheckNodeSchedulable(V1Node node)
    {
        var name = node.Metadata.Name;
        var ready = node.Status?.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        if (ready?.Status != "True")
        {
            throw new MigrationRefusedException("TargetNotReady", $"target node {name} is not Ready ({ready?.Reason ?? ready?.Status ?? "no Ready condition"})");
        }
        if (node.Spec?.Unschedulable == true)
        {
            throw new MigrationRefusedException("TargetNotReady", $"target node {name} is cordoned (unschedulable)");
        }
    }

    private async Task<NodeInfo> HealthyAgentAsync(string node, string role, CancellationToken cancellationToken)
    {
        try
        {
            var agent = await agents.GetAsync(node, cancellationToken);
            var health = await agent.HealthAsync(cancellationToken);
            if (health.Status != HealthResponse.Types.ServingStatus.Serving)
            {
                throw new MigrationRefusedException("AgentUnhealthy", $"the {role} agent on node {node} is not healthy: {string.Join("; ", health.Problems)}");
            }
            return await agent.GetNodeInfoAsync(cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind is ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.NotFound)
        {
            throw new MigrationRefusedException("AgentUnavailable", $"the {role} agent on node {node} cannot be reached: {e.Message}");
        }
    }

    /// <summary>CRIU restores images written by the same or an older CRIU; processes need the same architecture.</summary>
    private static void CheckCompatible(NodeInfo source, NodeInfo target)
    {
        if (!string.Equals(source.Architecture, target.Architecture, StringComparison.Ordinal))
        {
            throw new MigrationRefusedException("Incompatible", $"node {source.NodeName} is {source.Architecture} but node {target.NodeName} is {target.Architecture}");
        }
        if (target.CriuVersion < source.CriuVersion)
        {
            throw new MigrationRefusedException("Incompatible",
                $"node {target.NodeName} has CRIU {target.CriuVersionText}, older than {source.CriuVersionText} on node {source.NodeName}: it may not read the images");
        }
    }

    /// <summary>A RuntimeClass restore needs the target's runtime to have the podmigrate handler.</summary>
    private static void CheckRestoreRuntime(NodeInfo target, string node, MigrationSettings settings)
    {
        if (!settings.ThroughCheckpointImage && !target.RestoreRuntime)
        {
            var reported = target.RuntimeHandlers.Count > 0 ? $"its runtime reports handlers [{string.Join(", ", target.RuntimeHandlers)}]" : "its agent reports none installed";
            throw new MigrationRefusedException("NoRestoreRuntime",
                $"node {node} has no '{CloneRestore.RuntimeClassName}' runtime handler ({reported}): install it there, or set spec.restoreMethod: CheckpointImage if its runtime restores checkpoint images");
        }
    }

    private static void CheckShare(NodeInfo info, string node)
    {
        if (info.Share is null || !info.Share.Writable)
        {
            throw new MigrationRefusedException("ShareUnavailable", $"the checkpoint share is not writable on node {node} ({info.Share?.Path ?? "not mounted"})");
        }
    }

    /// <summary>
    /// No target given: the Ready, schedulable node (other than the source) whose agent is healthy and compatible and
    /// that has the most allocatable memory. Nodes that fail a check are named in the refusal when none is left.
    /// </summary>
    private async Task<(string Node, NodeInfo Agent)> ChooseTargetAsync(string sourceNode, NodeInfo sourceAgent, MigrationSettings settings, CancellationToken cancellationToken)
    {
        var nodes = await KubeApiErrors.CallAsync(t => api.Kubernetes.CoreV1.ListNodeAsync(cancellationToken: t), "list nodes", cancellationToken);
        var rejected = new List<string>();
        (string Node, NodeInfo Agent, long Memory)? best = null;
        foreach (var node in nodes.Items)
        {
            var name = node.Metadata.Name!;
            if (name == sourceNode)
            {
                continue;
            }
            try
            {
                CheckNodeSchedulable(node); // from the list: no second read per node
                var agent = await HealthyAgentAsync(name, "target", cancellationToken);
                CheckCompatible(sourceAgent, agent);
                CheckRestoreRuntime(agent, name, settings);
                CheckShare(agent, name);
                var memory = ParseQuantity(node.Status?.Allocatable?.TryGetValue("memory", out var allocatable) == true ? allocatable : null);
                if (best is null || memory > best.Value.Memory)
                {
                    best = (name, agent, memory);
                }
            }
            catch (MigrationRefusedException e)
            {
                rejected.Add(e.Message);
            }
        }
        return best is { } chosen
            ? (chosen.Node, chosen.Agent)
            : throw new MigrationRefusedException("NoTarget", rejected.Count == 0
                ? $"no node other than {sourceNode} exists"
                : $"no node can take the pod: {string.Join("; ", rejected)}");
    }

    /// <summary>A resource.Quantity for memory ("8Gi", "1024Ki", "512M", "1000"), in bytes; 0 when absent.</summary>
    internal static long ParseQuantity(ResourceQuantity? quantity) => quantity?.ToInt64() ?? 0;
}

/// <summary>A migration that must not (or can no longer) go ahead, with a CamelCase reason for conditions and Events.</summary>
internal sealed class MigrationRefusedException(string reason, string message) : Exception(message)
{
    public string Reason { get; } = reason;
}
