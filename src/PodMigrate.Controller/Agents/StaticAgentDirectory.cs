using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// Agents at fixed addresses (<see cref="AgentConnectionOptions.StaticAgents"/>): a local cluster's unix sockets or
/// ports, or a test's servers. "host:port" gets the scheme of the credentials (https, or http when insecure).
/// </summary>
internal sealed class StaticAgentDirectory : IAgentDirectory, IDisposable
{
    private readonly IReadOnlyDictionary<string, AgentEndpoint> _endpoints;
    private readonly AgentClientPool _pool;

    /// <param name="api">Only for reading the TLS Secret; null when the credentials come from a directory or are insecure.</param>
    public StaticAgentDirectory(IOptions<AgentConnectionOptions> options, IKubernetesApi? api, TimeProvider time, ILogger<StaticAgentDirectory> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _pool = new AgentClientPool(options.Value, api, time, logger);
        _endpoints = options.Value.StaticAgents.ToDictionary(
            a => a.Key,
            a => new AgentEndpoint(a.Key, a.Value.Contains("://", StringComparison.Ordinal) || a.Value.StartsWith("unix:", StringComparison.Ordinal) || a.Value.StartsWith('/')
                ? a.Value
                : $"{_pool.Scheme}://{a.Value}"),
            StringComparer.Ordinal);
    }

    public ValueTask<AgentClient> GetAsync(string nodeName, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(nodeName);
        return _endpoints.TryGetValue(nodeName, out var endpoint)
            ? _pool.GetAsync(endpoint, cancellationToken)
            : ValueTask.FromException<AgentClient>(PodMigrateException.Unavailable(
                $"node {nodeName} has no agent: the static agent map names only {string.Join(", ", _endpoints.Keys.Order(StringComparer.Ordinal))}"));
    }

    public ValueTask<IReadOnlyList<AgentEndpoint>> ListAsync(CancellationToken cancellationToken)
        => ValueTask.FromResult<IReadOnlyList<AgentEndpoint>>(_endpoints.Values.OrderBy(e => e.NodeName, StringComparer.Ordinal).ToList());

    public void Dispose() => _pool.Dispose();
}
