using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace PodMigrate.NodeEmulator;

/// <summary>
/// What one node emulator is configured with. The intervals default to kubelet's own (nodeLeaseDurationSeconds,
/// nodeStatusUpdateFrequency, nodeStatusReportFrequency, the PLEG relist period, the container restart back-off).
/// </summary>
public sealed class NodeEmulatorOptions
{
    /// <summary>The Node object's name (and kubernetes.io/hostname). Required.</summary>
    public string NodeName { get; set; } = "";

    /// <summary>The node's InternalIP: the hostIP of its pods, and the podIP of host-network pods.</summary>
    public string Address { get; set; } = "127.0.0.1";

    /// <summary>When set, a mirror pod for the node's agent (a process on the node, not a pod) is published with this gRPC port.</summary>
    public int? AgentPort { get; set; }

    /// <summary>The agent mirror pod's container image: informational, the agent is not run from it.</summary>
    public string AgentImage { get; set; } = "podmigrate/agent:host-process";

    /// <summary>Extra labels on the Node object (kubelet's --node-labels).</summary>
    public IDictionary<string, string> NodeLabels { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The "pods" capacity (kubelet's --max-pods).</summary>
    public int MaxPods { get; set; } = 110;

    /// <summary>The node Lease's duration; it is renewed every quarter of it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(40);

    /// <summary>How often the node's status is computed; it is written when it changed or <see cref="NodeStatusReportInterval"/> passed.</summary>
    public TimeSpan NodeStatusUpdateInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest an unchanged node status goes without a heartbeat write.</summary>
    public TimeSpan NodeStatusReportInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often each pod is compared with the runtime (kubelet's PLEG relist) when nothing else wakes it.</summary>
    public TimeSpan PodSyncInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How often sandboxes this emulator created for pods no longer in the API server are looked for.</summary>
    public TimeSpan HousekeepingInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>First delay before restarting a container that exited again (then doubled, up to <see cref="RestartBackoffMax"/>).</summary>
    public TimeSpan RestartBackoffInitial { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan RestartBackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long one watch request lasts before it is renewed (the server's timeoutSeconds).</summary>
    public TimeSpan WatchTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The node's memory capacity, enforced: every pod of the node runs under one cgroup (<see cref="CgroupRoot"/>) capped
    /// at this size, so together they cannot exceed it and the kernel's OOM killer acts as on a full node; the Node reports
    /// it as capacity and allocatable. Null (the default): the host's memory, nothing enforced.
    /// </summary>
    public long? NodeMemoryBytes { get; set; }

    /// <summary>The node's cgroup when <see cref="NodeMemoryBytes"/> is set (default /podmigrate/&lt;node&gt;); unique per node on one host.</summary>
    public string? NodeCgroup { get; set; }

    /// <summary>The cgroup the node's pods are placed under: empty (kubelet's /kubepods) unless the node's memory is enforced.</summary>
    public string CgroupRoot => NodeMemoryBytes is null ? "" : NodeCgroup ?? $"/podmigrate/{NodeName}";

    /// <summary>The bound of a compensation (removing a sandbox that failed half-way) independent of the caller's token.</summary>
    public TimeSpan CleanupTimeout { get; set; } = TimeSpan.FromSeconds(60);
}

internal sealed partial class NodeEmulatorOptionsValidator : IValidateOptions<NodeEmulatorOptions>
{
    public ValidateOptionsResult Validate(string? name, NodeEmulatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (!DnsSubdomain().IsMatch(options.NodeName) || options.NodeName.Length > 253)
        {
            failures.Add($"the node name '{options.NodeName}' is not a DNS subdomain (lower-case letters, digits, '-' and '.')");
        }
        if (!IPAddress.TryParse(options.Address, out _))
        {
            failures.Add($"the node address '{options.Address}' is not an IP address");
        }
        if (options.AgentPort is < 1 or > 65535)
        {
            failures.Add($"the agent port {options.AgentPort} is not within 1..65535");
        }
        if (options.NodeMemoryBytes is < 64L << 20)
        {
            failures.Add($"the node memory {options.NodeMemoryBytes} bytes is below 64Mi");
        }
        if (options.NodeCgroup is { } cgroup && (!cgroup.StartsWith('/') || cgroup.Length < 2 || cgroup.Split('/').Any(s => s is "." or "..")))
        {
            failures.Add($"the node cgroup '{cgroup}' is not an absolute cgroup path");
        }
        if (options.MaxPods < 1)
        {
            failures.Add("max pods must be positive");
        }
        foreach (var (what, value) in new[]
        {
            ("lease duration", options.LeaseDuration),
            ("node status update interval", options.NodeStatusUpdateInterval),
            ("node status report interval", options.NodeStatusReportInterval),
            ("pod sync interval", options.PodSyncInterval),
            ("housekeeping interval", options.HousekeepingInterval),
            ("restart back-off", options.RestartBackoffInitial),
            ("maximum restart back-off", options.RestartBackoffMax),
            ("watch timeout", options.WatchTimeout),
            ("cleanup timeout", options.CleanupTimeout),
        })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"the {what} must be positive");
            }
        }
        if (options.RestartBackoffMax < options.RestartBackoffInitial)
        {
            failures.Add("the maximum restart back-off must not be below the initial one");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsSubdomain();
}
