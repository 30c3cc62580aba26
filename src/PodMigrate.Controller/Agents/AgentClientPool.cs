using Microsoft.Extensions.Logging;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// What both directories share: one client per node, made for the node's current endpoint with the current
/// credentials, and replaced when either changes; the credentials are read again every
/// <see cref="AgentConnectionOptions.CredentialsRefreshInterval"/>, so a rotated Secret reaches new connections.
/// </summary>
internal sealed class AgentClientPool : IDisposable
{
    private readonly AgentConnectionOptions _options;
    private readonly IKubernetesApi? _api;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _clients = new(StringComparer.Ordinal);
    private readonly List<AgentCredentials> _retired = [];
    private volatile AgentCredentials? _credentials;
    private long _loadedAtTicks;
    private bool _disposed;

    public AgentClientPool(AgentConnectionOptions options, IKubernetesApi? api, TimeProvider time, ILogger logger)
    {
        _options = options;
        _api = api;
        _time = time;
        _logger = logger;
    }

    /// <summary>The scheme of TCP agent addresses: the options decide between cleartext and mutual TLS.</summary>
    public string Scheme => _options.Insecure ? Uri.UriSchemeHttp : Uri.UriSchemeHttps;

    /// <summary>The client for <paramref name="endpoint"/>: the cached one if its endpoint and credentials are still current.</summary>
    public async ValueTask<AgentClient> GetAsync(AgentEndpoint endpoint, CancellationToken cancellationToken)
    {
        var credentials = await CredentialsAsync(cancellationToken);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _clients.TryGetValue(endpoint.NodeName, out var previous);
            if (previous is not null && previous.Endpoint == endpoint && ReferenceEquals(previous.Credentials, credentials))
            {
                return previous.Client;
            }
            var serverName = string.IsNullOrEmpty(_options.TlsServerName) ? endpoint.NodeName : _options.TlsServerName;
            var client = AgentClient.Connect(endpoint.Address, credentials.ChannelOptions(endpoint.Address, serverName, _options.ConnectTimeout));
            _clients[endpoint.NodeName] = new Entry(endpoint, credentials, client);
            if (previous is null)
            {
                AgentDirectoryLog.ClientCreated(_logger, endpoint.NodeName, endpoint.ToString(), credentials.Source);
            }
            else
            {
                AgentDirectoryLog.ClientReplaced(_logger, endpoint.NodeName, previous.Endpoint.ToString(), endpoint.ToString(), credentials.Source);
                // The old endpoint's agent is gone (or its credentials are): calls still running on it end with Unavailable.
                previous.Client.Dispose();
                DisposeUnusedRetired();
            }
            return client;
        }
    }

    private async ValueTask<AgentCredentials> CredentialsAsync(CancellationToken cancellationToken)
    {
        if (_credentials is { } current && !RefreshDue())
        {
            return current;
        }
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_credentials is { } loadedMeanwhile && !RefreshDue())
            {
                return loadedMeanwhile;
            }
            AgentCredentials loaded;
            try
            {
                loaded = await AgentCredentials.LoadAsync(_options, _api, cancellationToken);
            }
            catch (PodMigrateException e) when (_credentials is not null)
            {
                // A rotation caught halfway or an API blip: the credentials in use keep working until they expire.
                AgentDirectoryLog.CredentialsRefreshFailed(_logger, _credentials.Source, e.Message);
                Interlocked.Exchange(ref _loadedAtTicks, _time.GetUtcNow().UtcTicks);
                return _credentials;
            }
            Interlocked.Exchange(ref _loadedAtTicks, _time.GetUtcNow().UtcTicks);
            lock (_lock)
            {
                if (_credentials is not null && _credentials.Fingerprint == loaded.Fingerprint)
                {
                    loaded.Dispose();
                    return _credentials;
                }
                if (_credentials is not null)
                {
                    _retired.Add(_credentials);
                }
                _credentials = loaded;
            }
            AgentDirectoryLog.CredentialsLoaded(_logger, loaded.Source);
            return loaded;
        }
        finally
        {
            _loading.Release();
        }
    }

    private bool RefreshDue()
    {
        var interval = _options.CredentialsRefreshInterval;
        return interval > TimeSpan.Zero && _time.GetUtcNow().UtcTicks - Interlocked.Read(ref _loadedAtTicks) >= interval.Ticks;
    }

    /// <summary>Credentials replaced by a rotation are released once no client is made with them any more.</summary>
    private void DisposeUnusedRetired()
    {
        _retired.RemoveAll(retired =>
        {
            if (_clients.Values.Any(e => ReferenceEquals(e.Credentials, retired)))
            {
                return false;
            }
            retired.Dispose();
            return true;
        });
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            foreach (var entry in _clients.Values)
            {
                entry.Client.Dispose();
            }
            _clients.Clear();
            foreach (var retired in _retired)
            {
                retired.Dispose();
            }
            _credentials?.Dispose();
        }
        _loading.Dispose();
    }

    private sealed record Entry(AgentEndpoint Endpoint, AgentCredentials Credentials, AgentClient Client);
}
