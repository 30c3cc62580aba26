using PodMigrate.Agent.V1;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// Where each node's agent is, and a client of it. Two implementations: <see cref="KubernetesAgentDirectory"/> (the
/// agent DaemonSet's pods, the real thing) and <see cref="StaticAgentDirectory"/> (a fixed map, for local use and tests).
/// The directory owns the clients it hands out: callers use them and do not dispose them. A client is replaced when its
/// node's agent moves (new pod, IP or port) or the credentials rotate; calls still running on a replaced client fail
/// with Unavailable.
/// </summary>
internal interface IAgentDirectory
{
    /// <summary>
    /// A client of the agent on <paramref name="nodeName"/>. Throws PodMigrateException Unavailable naming the node when
    /// no Running and Ready agent is there.
    /// </summary>
    ValueTask<AgentClient> GetAsync(string nodeName, CancellationToken cancellationToken);

    /// <summary>The usable agents, one per node, ordered by node name.</summary>
    ValueTask<IReadOnlyList<AgentEndpoint>> ListAsync(CancellationToken cancellationToken);
}

/// <summary>
/// One node's agent. <paramref name="Address"/> is what <see cref="AgentClient.Connect"/> takes ("https://10.0.0.7:7440",
/// "unix:/run/podmigrate/node-a/agent.sock"). <paramref name="Pod"/> ("namespace/name") and <paramref name="PodUid"/> are
/// set when the agent was found through its pod, so a restarted pod at the same address is a new endpoint too.
/// </summary>
internal sealed record AgentEndpoint(string NodeName, string Address, string? Pod = null, string? PodUid = null)
{
    public override string ToString() => Pod is null ? $"node {NodeName} at {Address}" : $"node {NodeName} at {Address} (pod {Pod})";
}
