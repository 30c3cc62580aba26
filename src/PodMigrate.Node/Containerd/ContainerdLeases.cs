using Api = Containerd.Services.Leases.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>Leases: hold content and snapshots against containerd's garbage collector while they are unreferenced.</summary>
public sealed class ContainerdLeases(ContainerdConnection connection)
{
    private readonly Api.Leases.LeasesClient _leases = new(connection.Invoker);

    /// <summary>
    /// Creates a lease that expires by itself after <paramref name="expiresAfter"/> (containerd's
    /// <c>containerd.io/gc.expire</c> label), so a crashed client cannot pin resources forever.
    /// </summary>
    public async Task<ContainerdLease> CreateAsync(string id, TimeSpan expiresAfter, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        var request = new Api.CreateRequest { Id = id };
        var expiry = connection.TimeProvider.GetUtcNow() + expiresAfter;
        request.Labels.Add("containerd.io/gc.expire", expiry.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture));
        await connection.UnaryAsync(o => _leases.CreateAsync(request, o), new ContainerdCall($"creating lease {id}"), cancellationToken);
        return new ContainerdLease(this, id);
    }

    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _leases.DeleteAsync(new Api.DeleteRequest { Id = id }, o), new ContainerdCall($"deleting lease {id}"), cancellationToken);

    /// <summary>The leases of the connection's namespace (ids).</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _leases.ListAsync(new Api.ListRequest(), o), new ContainerdCall("listing leases"), cancellationToken);
        return [.. response.Leases.Select(l => l.Id)];
    }

    /// <summary>The connection whose calls are made under <paramref name="lease"/>.</summary>
    public ContainerdConnection Under(ContainerdLease lease) => connection.WithLease(lease.Id);
}

/// <summary>A lease that is deleted on dispose (with its own short timeout: disposal often follows a cancelled operation).</summary>
public sealed class ContainerdLease : IAsyncDisposable
{
    private readonly ContainerdLeases _leases;
    private int _disposed;

    internal ContainerdLease(ContainerdLeases leases, string id)
    {
        _leases = leases;
        Id = id;
    }

    public string Id { get; }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _leases.DeleteAsync(Id, timeout.Token);
    }
}
