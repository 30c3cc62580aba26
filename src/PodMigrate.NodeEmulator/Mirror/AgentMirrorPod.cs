using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Serialization;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Nodes;
using PodMigrate.NodeEmulator.Pods;
using PodMigrate.NodeEmulator.Probes;

namespace PodMigrate.NodeEmulator.Mirror;

/// <summary>
/// The node's agent, a process on the node, shown to the API server the way kubelet shows a static pod: a mirror pod
/// (annotations kubernetes.io/config.mirror and config.source=file, owned by the Node) in podmigrate-system, host
/// network, one container "agent" with the gRPC port, status Running with the node's address as pod IP, and Ready
/// driven by a tcpSocket readiness probe of that port. Like kubelet, it recreates the mirror pod when it is deleted or
/// its spec no longer matches, and leaves it in place when the emulator stops.
/// </summary>
internal sealed class AgentMirrorPod
{
    private static readonly TimeSpan ResyncInterval = TimeSpan.FromSeconds(10);

    private readonly IKubernetesApi _api;
    private readonly Prober _prober;
    private readonly NodeEmulatorOptions _options;
    private readonly Func<string?> _nodeUid;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly V1Pod _manifest;
    private readonly string _hash;
    private DateTimeOffset? _startTime;
    private V1PodStatus? _written;
    private string? _writtenText;
    private string? _writtenUid;

    public AgentMirrorPod(IKubernetesApi api, Prober prober, NodeEmulatorOptions options, Func<string?> nodeUid, TimeProvider time, ILogger logger)
    {
        _api = api;
        _prober = prober;
        _options = options;
        _nodeUid = nodeUid;
        _time = time;
        _logger = logger;
        _manifest = Manifest(options);
        _hash = Hash(_manifest);
    }

    public string Name => _manifest.Metadata.Name!;

    public void Wake() => _wake.Writer.TryWrite(true);

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var container = _manifest.Spec.Containers[0];
        var target = new ProbeTarget(_options.Address, container.Ports!, ContainerId: null);
        _startTime = Times.Truncate(_time.GetUtcNow());
        await using var readiness = new ReadinessWorker(_prober, container.ReadinessProbe!, target, _startTime.Value, Wake, _time, _logger, $"{EmulatorLabels.AgentNamespace}/{Name}/{container.Name}");
        while (true)
        {
            try
            {
                await SyncAsync(readiness.Ready, cancellationToken);
            }
            catch (PodMigrateException e)
            {
                EmulatorLog.MirrorPodFailed(_logger, Name, e);
            }
            using var interval = new CancellationTokenSource(ResyncInterval, _time);
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, interval.Token);
            try
            {
                await _wake.Reader.WaitToReadAsync(either.Token);
                _wake.Reader.TryRead(out _);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Resync.
            }
        }
    }

    private async Task SyncAsync(bool ready, CancellationToken cancellationToken)
    {
        var pod = await EnsureMirrorPodAsync(cancellationToken);
        if (pod.Metadata.Uid != _writtenUid)
        {
            _written = null;
            _writtenText = null;
        }
        var now = Times.Truncate(_time.GetUtcNow());
        var spec = _manifest.Spec.Containers[0];
        var container = new V1ContainerStatus
        {
            Name = spec.Name,
            Image = spec.Image,
            ImageID = "",
            Ready = ready,
            Started = true,
            RestartCount = 0,
            State = new V1ContainerState { Running = new V1ContainerStateRunning { StartedAt = _startTime?.UtcDateTime } },
        };
        var addresses = new PodAddresses([_options.Address], _options.Address);
        var status = PodStatusBuilder.Build(pod, _written ?? pod.Status, [container], addresses, sandboxReady: true, podIsTerminal: false, _startTime ?? now, now);
        var text = PodStatusWriter.Serialize(status);
        if (text == _writtenText)
        {
            return;
        }
        await PodStatusWriter.WriteAsync(_api, pod, status, cancellationToken);
        if (_written?.ContainerStatuses?[0].Ready != ready)
        {
            EmulatorLog.MirrorPodStatus(_logger, Name, ready);
        }
        _written = status;
        _writtenText = text;
        _writtenUid = pod.Metadata.Uid;
    }

    /// <summary>kubelet's mirror client: create when missing; delete and recreate when terminating or built from another manifest.</summary>
    private async Task<V1Pod> EnsureMirrorPodAsync(CancellationToken cancellationToken)
    {
        var ns = EmulatorLabels.AgentNamespace;
        V1Pod? existing;
        try
        {
            existing = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.ReadNamespacedPodAsync(Name, ns, cancellationToken: t), $"get pod {ns}/{Name}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            existing = null;
        }
        if (existing is not null)
        {
            if (existing.Metadata.DeletionTimestamp is null && existing.Metadata.Annotations.ValueAt(EmulatorLabels.ConfigMirror) == _hash)
            {
                return existing;
            }
            EmulatorLog.MirrorPodReplacing(_logger, Name);
            var body = new V1DeleteOptions { GracePeriodSeconds = 0, Preconditions = new V1Preconditions { Uid = existing.Metadata.Uid } };
            await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.DeleteNamespacedPodAsync(Name, ns, body, cancellationToken: t), $"delete pod {ns}/{Name}", cancellationToken);
        }
        await EnsureNamespaceAsync(cancellationToken);
        var mirror = PackageJson.FromNode<V1Pod>(PackageJson.ToNode(_manifest), "mirror pod");
        mirror.Metadata.Annotations![EmulatorLabels.ConfigMirror] = _hash;
        mirror.Metadata.Annotations["kubernetes.io/config.seen"] = _time.GetUtcNow().UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", CultureInfo.InvariantCulture);
        if (_nodeUid() is { } nodeUid)
        {
            mirror.Metadata.OwnerReferences = [NodeLifecycle.NodeOwner(_options.NodeName, nodeUid)];
        }
        var created = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.CreateNamespacedPodAsync(mirror, ns, cancellationToken: t), $"create pod {ns}/{Name}", cancellationToken);
        EmulatorLog.MirrorPodCreated(_logger, Name, created.Metadata.Uid ?? "");
        return created;
    }

    private async Task EnsureNamespaceAsync(CancellationToken cancellationToken)
    {
        try
        {
            var body = new V1Namespace { Metadata = new V1ObjectMeta { Name = EmulatorLabels.AgentNamespace } };
            await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.CreateNamespaceAsync(body, cancellationToken: t), $"create namespace {EmulatorLabels.AgentNamespace}", cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            // Created by the deployment, or by another node's emulator.
        }
    }

    /// <summary>The "static pod manifest" of the agent: what its mirror pod shows and what its hash is computed from.</summary>
    private static V1Pod Manifest(NodeEmulatorOptions options) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = EmulatorLabels.AgentMirrorPodName(options.NodeName),
            NamespaceProperty = EmulatorLabels.AgentNamespace,
            Labels = new Dictionary<string, string>()
            {
                [EmulatorLabels.AppName] = EmulatorLabels.AgentAppName,
                [EmulatorLabels.AppComponent] = EmulatorLabels.AgentComponent,
            },
            Annotations = new Dictionary<string, string>() { [KubeletLabels.ConfigSource] = "file" },
        },
        Spec = new V1PodSpec
        {
            NodeName = options.NodeName,
            HostNetwork = true,
            RestartPolicy = "Always",
            Containers =
            [
                new V1Container
                {
                    Name = EmulatorLabels.AgentContainer,
                    Image = options.AgentImage,
                    Ports = [new V1ContainerPort { Name = EmulatorLabels.AgentPortName, ContainerPort = options.AgentPort ?? 0, Protocol = "TCP" }],
                    ReadinessProbe = new V1Probe
                    {
                        TcpSocket = new V1TCPSocketAction { Port = EmulatorLabels.AgentPortName },
                        PeriodSeconds = 2,
                        TimeoutSeconds = 1,
                        SuccessThreshold = 1,
                        FailureThreshold = 2,
                    },
                },
            ],
        },
    };

    /// <summary>kubelet's config hash of a static pod: a digest of the manifest, so a changed manifest means a new mirror pod.</summary>
    private static string Hash(V1Pod manifest)
    {
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(manifest, PackageJson.TypeInfo<V1Pod>())));
        return Convert.ToHexStringLower(digest)[..32];
    }
}
