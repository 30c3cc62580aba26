using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;

namespace PodMigrate.NodeEmulator.Nodes;

/// <summary>
/// The node half of kubelet: registers the Node object, renews its Lease in kube-node-lease (the heartbeat the node
/// lifecycle controller reads), and writes the node's status when it changes or at least every report interval.
/// On shutdown it does nothing, like a stopped kubelet: the heartbeats stop and the Lease expires.
/// </summary>
internal sealed class NodeLifecycle
{
    /// <summary>The kubelet release whose behaviour the emulator follows; "+podmigrate" tells it apart from a real kubelet.</summary>
    public const string KubeletVersion = "v1.34.0+podmigrate-emulator";

    private static readonly TimeSpan RetryInitial = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(30);

    private readonly IKubernetesApi _api;
    private readonly CriConnection _cri;
    private readonly NodeEmulatorOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HostFacts _host;
    private V1NodeStatus? _written;
    private DateTimeOffset _writtenAt;
    private bool _leaseExists;

    public NodeLifecycle(IKubernetesApi api, CriConnection cri, NodeEmulatorOptions options, TimeProvider time, ILogger logger)
    {
        _api = api;
        _cri = cri;
        _options = options;
        _time = time;
        _logger = logger;
        _host = HostFacts.Read() with { EnforcedMemoryBytes = options.NodeMemoryBytes };
    }

    private string NodeName => _options.NodeName;

    /// <summary>The Node object's uid once registered (owner of the Lease and of mirror pods).</summary>
    public string? NodeUid { get; private set; }

    /// <summary>Creates the Node (or adopts an existing one of that name, as kubelet does on restart), retrying until it succeeds.</summary>
    public async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var delay = RetryInitial;
        while (true)
        {
            try
            {
                await RegisterOnceAsync(cancellationToken);
                return;
            }
            catch (PodMigrateException e)
            {
                EmulatorLog.NodeRegistrationFailed(_logger, NodeName, delay, e);
            }
            await Task.Delay(delay, _time, cancellationToken);
            delay = ExponentialBackoff.Doubled(delay, RetryMax);
        }
    }

    /// <summary>Renews the node's Lease every quarter of its duration, until cancelled.</summary>
    public async Task RunLeaseAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.LeaseDuration / 4, _time);
        do
        {
            try
            {
                await RenewLeaseAsync(cancellationToken);
            }
            catch (PodMigrateException e)
            {
                // NotFound (deleted) or anything else: look it up again, creating it if gone, on the next beat.
                _leaseExists = false;
                EmulatorLog.LeaseRenewalFailed(_logger, NodeName, e);
            }
        }
        while (await timer.WaitForNextTickAsync(cancellationToken));
    }

    /// <summary>Recomputes the node's status every update interval; writes it when it changed or the report interval passed.</summary>
    public async Task RunStatusAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.NodeStatusUpdateInterval, _time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            try
            {
                await UpdateStatusAsync(force: false, cancellationToken);
            }
            catch (PodMigrateException e)
            {
                EmulatorLog.NodeStatusUpdateFailed(_logger, NodeName, e);
            }
        }
    }

    private async Task RegisterOnceAsync(CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, string>(_options.NodeLabels, StringComparer.Ordinal)
        {
            [EmulatorLabels.Hostname] = NodeName,
            [EmulatorLabels.Os] = "linux",
            [EmulatorLabels.Arch] = _host.Architecture,
        };
        V1Node node;
        try
        {
            var body = new V1Node { Metadata = new V1ObjectMeta { Name = NodeName, Labels = labels } };
            node = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.CreateNodeAsync(body, cancellationToken: t), $"create node {NodeName}", cancellationToken);
            EmulatorLog.NodeRegistered(_logger, NodeName);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            node = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.ReadNodeAsync(NodeName, cancellationToken: t), $"get node {NodeName}", cancellationToken);
            var missing = labels.Where(l => node.Metadata.Labels.ValueAt(l.Key) != l.Value).ToList();
            if (missing.Count > 0)
            {
                // The Node may be others' too (a cordon, labels of an operator): a merge patch of our labels, not a replace.
                var labelPatch = new JsonObject();
                foreach (var (key, value) in missing)
                {
                    labelPatch[key] = value;
                }
                var patch = new V1Patch(new JsonObject { ["metadata"] = new JsonObject { ["labels"] = labelPatch } }.ToJsonString(), V1Patch.PatchType.MergePatch);
                node = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.PatchNodeAsync(patch, NodeName, cancellationToken: t), $"patch node {NodeName}", cancellationToken);
            }
            // Transition times carry on from what the node last reported.
            _written = node.Status;
            EmulatorLog.NodeAdopted(_logger, NodeName);
        }
        NodeUid = node.Metadata.Uid;
        await UpdateStatusAsync(force: true, cancellationToken);
    }

    private async Task RenewLeaseAsync(CancellationToken cancellationToken)
    {
        var now = MicroTime.Of(_time.GetUtcNow());
        var ns = EmulatorLabels.NodeLeaseNamespace;
        var leases = _api.Kubernetes.CoordinationV1;
        if (!_leaseExists)
        {
            try
            {
                await KubeApiErrors.CallAsync(t => leases.ReadNamespacedLeaseAsync(NodeName, ns, cancellationToken: t), $"get lease {ns}/{NodeName}", cancellationToken);
                _leaseExists = true;
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                var lease = NewLease(now);
                await KubeApiErrors.CallAsync(t => leases.CreateNamespacedLeaseAsync(lease, ns, cancellationToken: t), $"create lease {ns}/{NodeName}", cancellationToken);
                _leaseExists = true;
                return;
            }
        }
        // The node's own Lease, renewed by a merge patch of the fields the kubelet sets (nothing else of it is rewritten).
        var spec = new V1LeaseSpec { HolderIdentity = NodeName, LeaseDurationSeconds = (int)_options.LeaseDuration.TotalSeconds, RenewTime = now };
        var patch = new V1Patch(new JsonObject { ["spec"] = PackageJson.ToNode(spec) }.ToJsonString(), V1Patch.PatchType.MergePatch);
        await KubeApiErrors.CallAsync(t => leases.PatchNamespacedLeaseAsync(patch, NodeName, ns, cancellationToken: t), $"patch lease {ns}/{NodeName}", cancellationToken);
    }

    private V1Lease NewLease(DateTime now) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = NodeName,
            NamespaceProperty = EmulatorLabels.NodeLeaseNamespace,
            OwnerReferences = NodeUid is null ? null : [NodeOwner(NodeName, NodeUid)],
        },
        Spec = new V1LeaseSpec { HolderIdentity = NodeName, LeaseDurationSeconds = (int)_options.LeaseDuration.TotalSeconds, RenewTime = now },
    };

    /// <summary>kubelet makes the Node the owner of its Lease and of its mirror pods, so they go when the Node goes.</summary>
    public static V1OwnerReference NodeOwner(string nodeName, string nodeUid) => new()
    {
        ApiVersion = "v1",
        Kind = "Node",
        Name = nodeName,
        Uid = nodeUid,
        Controller = true,
    };

    private async Task UpdateStatusAsync(bool force, CancellationToken cancellationToken)
    {
        var now = Times.Truncate(_time.GetUtcNow());
        var status = await ComputeStatusAsync(now, cancellationToken);
        var changed = _written is null || !SameIgnoringHeartbeats(status, _written);
        if (!force && !changed && now - _writtenAt < _options.NodeStatusReportInterval)
        {
            return;
        }
        var patch = new V1Patch(new JsonObject { ["status"] = PackageJson.ToNode(status) }.ToJsonString(), V1Patch.PatchType.MergePatch);
        await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.PatchNodeStatusAsync(patch, NodeName, cancellationToken: t), $"patch status of node {NodeName}", cancellationToken);
        if (changed)
        {
            var ready = status.Conditions!.Single(c => c.Type == "Ready").Status;
            EmulatorLog.NodeStatusWritten(_logger, NodeName, ready);
        }
        _written = status;
        _writtenAt = now;
    }

    private async Task<V1NodeStatus> ComputeStatusAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        string runtimeVersion = "";
        string? notReady;
        try
        {
            var version = await _cri.Runtime.VersionAsync(cancellationToken);
            runtimeVersion = $"{version.RuntimeName}://{version.RuntimeVersion}";
            var runtimeStatus = await _cri.Runtime.StatusAsync(verbose: false, cancellationToken);
            var failing = runtimeStatus.Status?.Conditions.Where(c => !c.Status).ToList() ?? [];
            notReady = failing.Count == 0
                ? null
                : "container runtime not ready: " + string.Join(", ", failing.Select(c => $"{c.Type}=false reason:{c.Reason} message:{c.Message}"));
        }
        catch (PodMigrateException e)
        {
            notReady = $"container runtime is down: {e.Message}";
        }
        return new V1NodeStatus
        {
            Capacity = Quantities(_host.Capacity(_options.MaxPods)),
            Allocatable = Quantities(_host.Allocatable(_options.MaxPods)),
            Conditions =
            [
                Condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now),
                Condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
                Condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
                notReady is null
                    ? Condition("Ready", true, "KubeletReady", "kubelet is posting ready status", now)
                    : Condition("Ready", false, "KubeletNotReady", notReady, now),
            ],
            Addresses =
            [
                new V1NodeAddress { Type = "InternalIP", Address = _options.Address },
                new V1NodeAddress { Type = "Hostname", Address = NodeName },
            ],
            NodeInfo = _host.SystemInfo(runtimeVersion, KubeletVersion),
        };
    }

    private V1NodeCondition Condition(string type, bool value, string reason, string message, DateTimeOffset now)
    {
        var status = value ? "True" : "False";
        var previous = _written?.Conditions?.FirstOrDefault(c => c.Type == type);
        return new V1NodeCondition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            LastHeartbeatTime = now.UtcDateTime,
            LastTransitionTime = previous?.Status == status ? previous.LastTransitionTime ?? now.UtcDateTime : now.UtcDateTime,
        };
    }

    private static bool SameIgnoringHeartbeats(V1NodeStatus a, V1NodeStatus b)
    {
        static string Text(V1NodeStatus status)
        {
            var copy = PackageJson.ToNode(status);
            foreach (var condition in copy["conditions"]?.AsArray() ?? [])
            {
                condition?.AsObject().Remove("lastHeartbeatTime");
            }
            return copy.ToJsonString();
        }

        return Text(a) == Text(b);
    }

    private static Dictionary<string, ResourceQuantity> Quantities(Dictionary<string, string> quantities)
        => quantities.ToDictionary(q => q.Key, q => new ResourceQuantity(q.Value), StringComparer.Ordinal);
}
