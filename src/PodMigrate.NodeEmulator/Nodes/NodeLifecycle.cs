using System.Text.Json;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Node.Cri;
using KubeNode = PodMigrate.Kube.Models.Node;

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
    private NodeStatus? _written;
    private DateTimeOffset _writtenAt;
    private Lease? _lease;

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
                // Conflict or NotFound: someone else wrote it; read it again on the next beat.
                _lease = null;
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
        KubeNode node;
        try
        {
            node = await _api.CreateAsync(KubeResources.Nodes, null, new KubeNode { Metadata = new ObjectMeta { Name = NodeName, Labels = labels } }, cancellationToken);
            EmulatorLog.NodeRegistered(_logger, NodeName);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            node = await _api.GetAsync(KubeResources.Nodes, null, NodeName, cancellationToken);
            var missing = labels.Where(l => node.Metadata.Labels?.GetValueOrDefault(l.Key) != l.Value).ToList();
            if (missing.Count > 0)
            {
                node.Metadata.Labels ??= [];
                foreach (var (key, value) in missing)
                {
                    node.Metadata.Labels[key] = value;
                }
                node = await _api.ReplaceAsync(KubeResources.Nodes, null, NodeName, node, cancellationToken);
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
        var now = _time.GetUtcNow();
        if (_lease is null)
        {
            try
            {
                _lease = await _api.GetAsync(KubeResources.Leases, EmulatorLabels.NodeLeaseNamespace, NodeName, cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                _lease = await _api.CreateAsync(KubeResources.Leases, EmulatorLabels.NodeLeaseNamespace, NewLease(now), cancellationToken);
                return;
            }
        }
        _lease.Spec.HolderIdentity = NodeName;
        _lease.Spec.LeaseDurationSeconds = (int)_options.LeaseDuration.TotalSeconds;
        _lease.Spec.RenewTime = now;
        _lease = await _api.ReplaceAsync(KubeResources.Leases, EmulatorLabels.NodeLeaseNamespace, NodeName, _lease, cancellationToken);
    }

    private Lease NewLease(DateTimeOffset now) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = NodeName,
            Namespace = EmulatorLabels.NodeLeaseNamespace,
            OwnerReferences = NodeUid is null ? null : [NodeOwner(NodeName, NodeUid)],
        },
        Spec = new LeaseSpec { HolderIdentity = NodeName, LeaseDurationSeconds = (int)_options.LeaseDuration.TotalSeconds, RenewTime = now },
    };

    /// <summary>kubelet makes the Node the owner of its Lease and of its mirror pods, so they go when the Node goes.</summary>
    public static OwnerReference NodeOwner(string nodeName, string nodeUid) => new()
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
        var patch = $"{{\"status\":{JsonSerializer.Serialize(status, KubeClientJsonContext.Default.NodeStatus)}}}";
        await _api.PatchAsync(KubeResources.Nodes, null, NodeName, PatchType.MergePatch, patch, status: true, cancellationToken);
        if (changed)
        {
            var ready = status.Conditions!.Single(c => c.Type == "Ready").Status;
            EmulatorLog.NodeStatusWritten(_logger, NodeName, ready);
        }
        _written = status;
        _writtenAt = now;
    }

    private async Task<NodeStatus> ComputeStatusAsync(DateTimeOffset now, CancellationToken cancellationToken)
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
        return new NodeStatus
        {
            Capacity = _host.Capacity(_options.MaxPods),
            Allocatable = _host.Allocatable(_options.MaxPods),
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
                new NodeAddress { Type = "InternalIP", Address = _options.Address },
                new NodeAddress { Type = "Hostname", Address = NodeName },
            ],
            NodeInfo = _host.SystemInfo(runtimeVersion, KubeletVersion),
        };
    }

    private NodeCondition Condition(string type, bool value, string reason, string message, DateTimeOffset now)
    {
        var status = value ? "True" : "False";
        var previous = _written?.Conditions?.FirstOrDefault(c => c.Type == type);
        return new NodeCondition
        {
            Type = type,
            Status = status,
            Reason = reason,
            Message = message,
            LastHeartbeatTime = now,
            LastTransitionTime = previous?.Status == status ? previous.LastTransitionTime ?? now : now,
        };
    }

    private static bool SameIgnoringHeartbeats(NodeStatus a, NodeStatus b)
    {
        static string Text(NodeStatus status)
        {
            var copy = JsonSerializer.Deserialize(JsonSerializer.Serialize(status, KubeClientJsonContext.Default.NodeStatus), KubeClientJsonContext.Default.NodeStatus)!;
            foreach (var condition in copy.Conditions ?? [])
            {
                condition.LastHeartbeatTime = null;
            }
            return JsonSerializer.Serialize(copy, KubeClientJsonContext.Default.NodeStatus);
        }

        return Text(a) == Text(b);
    }
}
