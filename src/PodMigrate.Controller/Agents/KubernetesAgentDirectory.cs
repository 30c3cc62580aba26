using System.Net;
using System.Net.Sockets;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// The agents as the cluster runs them: the DaemonSet's pods (label selector, namespace), per node the Running and Ready
/// one, reached at its pod IP (the node's IP: the agent runs with hostNetwork) and its container port named "grpc".
/// Each call lists the pods afresh, so a moved or restarted agent is found at once; the agents are asked only at the
/// steps of a migration, not in a hot loop.
/// </summary>
internal sealed class KubernetesAgentDirectory : IAgentDirectory, IDisposable
{
    private readonly IKubernetesApi _api;
    private readonly AgentConnectionOptions _options;
    private readonly AgentClientPool _pool;

    public KubernetesAgentDirectory(IKubernetesApi api, IOptions<AgentConnectionOptions> options, TimeProvider time, ILogger<KubernetesAgentDirectory> logger)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(options);
        _api = api;
        _options = options.Value;
        _pool = new AgentClientPool(_options, api, time, logger);
    }

    public async ValueTask<AgentClient> GetAsync(string nodeName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        var pods = await ListPodsAsync(cancellationToken);
        var onNode = pods.Where(p => p.Spec.NodeName == nodeName).ToList();
        if (Usable(onNode) is not { } endpoint)
        {
            throw PodMigrateException.Unavailable($"node {nodeName} has no Running and Ready agent: {WhyNot(onNode)}");
        }
        return await _pool.GetAsync(endpoint, cancellationToken);
    }

    public async ValueTask<IReadOnlyList<AgentEndpoint>> ListAsync(CancellationToken cancellationToken)
    {
        var pods = await ListPodsAsync(cancellationToken);
        return pods.Where(p => !string.IsNullOrEmpty(p.Spec.NodeName))
            .GroupBy(p => p.Spec.NodeName!, StringComparer.Ordinal)
            .Select(g => Usable(g.ToList()))
            .OfType<AgentEndpoint>()
            .OrderBy(e => e.NodeName, StringComparer.Ordinal)
            .ToList();
    }

    private async Task<IReadOnlyList<V1Pod>> ListPodsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var list = await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.ListNamespacedPodAsync(_options.Namespace, labelSelector: _options.LabelSelector, cancellationToken: t),
                $"list pods {_options.LabelSelector} in {_options.Namespace}", cancellationToken);
            return [.. list.Items];
        }
        catch (PodMigrateException e) when (e.Kind is not (ErrorKind.Cancelled or ErrorKind.DeadlineExceeded))
        {
            throw new PodMigrateException(e.Kind, $"listing the agent pods ({_options.LabelSelector} in {_options.Namespace}): {e.Message}", e);
        }
    }

    /// <summary>The newest usable pod of one node: a DaemonSet update may briefly show two.</summary>
    private AgentEndpoint? Usable(List<V1Pod> onNode)
        => onNode.Where(p => Problem(p) is null)
            .OrderByDescending(p => p.Metadata.CreationTimestamp ?? DateTime.MinValue)
            .Select(p => new AgentEndpoint(p.Spec.NodeName!, Address(p.Status!.PodIP!, GrpcPort(p)!.Value), p.Key(), p.Metadata.Uid))
            .FirstOrDefault();

    /// <summary>Why a pod cannot be called, or null when it can.</summary>
    private string? Problem(V1Pod pod) => pod switch
    {
        { Metadata.DeletionTimestamp: not null } => "terminating",
        { Status: null } => "without status",
        { Status.Phase: not "Running" } => $"{pod.Status?.Phase ?? "no phase"}",
        _ when !pod.IsReady() => "Running, not Ready",
        { Status.PodIP: null or "" } => "no pod IP",
        _ when GrpcPort(pod) is null => $"no container port named {_options.PortName}",
        _ => null,
    };

    private string WhyNot(List<V1Pod> onNode) => onNode.Count == 0
        ? $"no pod matching {_options.LabelSelector} in namespace {_options.Namespace} runs there"
        : string.Join("; ", onNode.Select(p => $"pod {p.Key()} is {Problem(p)}"));

    private int? GrpcPort(V1Pod pod)
        => pod.Spec.Containers.SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name == _options.PortName)?.ContainerPort;

    private string Address(string podIp, int port)
    {
        var host = IPAddress.TryParse(podIp, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{podIp}]" : podIp;
        return $"{_pool.Scheme}://{host}:{port}";
    }

    public void Dispose() => _pool.Dispose();
}
