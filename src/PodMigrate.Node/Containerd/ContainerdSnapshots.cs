using Api = Containerd.Services.Snapshots.V1;
using Mount = Containerd.Types.Mount;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>One snapshotter's snapshots. Prepare under a lease (see <see cref="ContainerdLeases.Under"/>) until a container holds the key.</summary>
public sealed class ContainerdSnapshots(ContainerdConnection connection, string snapshotter = ContainerdSnapshots.Overlayfs)
{
    private readonly Api.Snapshots.SnapshotsClient _snapshotsClient = new(connection.Invoker);

    public const string Overlayfs = "overlayfs";


    public string Snapshotter => snapshotter;

    /// <summary>An active (writable) snapshot <paramref name="key"/> on top of the committed <paramref name="parent"/> (an image's chain id).</summary>
    public async Task<IReadOnlyList<Mount>> PrepareAsync(string key, string parent, CancellationToken cancellationToken)
    {
        var request = new Api.PrepareSnapshotRequest { Snapshotter = snapshotter, Key = key, Parent = parent };
        var response = await connection.UnaryAsync(o => _snapshotsClient.PrepareAsync(request, o), new ContainerdCall($"preparing snapshot {key} on {parent}"), cancellationToken);
        return response.Mounts;
    }

    public async Task<IReadOnlyList<Mount>> MountsAsync(string key, CancellationToken cancellationToken)
    {
        var request = new Api.MountsRequest { Snapshotter = snapshotter, Key = key };
        var response = await connection.UnaryAsync(o => _snapshotsClient.MountsAsync(request, o), new ContainerdCall($"getting the mounts of snapshot {key}"), cancellationToken);
        return response.Mounts;
    }

    public async Task<Api.Info> StatAsync(string key, CancellationToken cancellationToken)
    {
        var request = new Api.StatSnapshotRequest { Snapshotter = snapshotter, Key = key };
        var response = await connection.UnaryAsync(o => _snapshotsClient.StatAsync(request, o), new ContainerdCall($"getting snapshot {key}"), cancellationToken);
        return response.Info;
    }

    /// <summary>The snapshots of this snapshotter (all, or those matching any of the containerd filters).</summary>
    public async Task<IReadOnlyList<Api.Info>> ListAsync(CancellationToken cancellationToken, params string[] filters)
    {
        var request = new Api.ListSnapshotsRequest { Snapshotter = snapshotter };
        request.Filters.Add(filters);
        var snapshots = new List<Api.Info>();
        await foreach (var response in connection.ServerStreamingAsync(o => _snapshotsClient.List(request, o), new ContainerdCall($"listing {snapshotter} snapshots"), cancellationToken))
        {
            snapshots.AddRange(response.Info);
        }
        return snapshots;
    }

    /// <summary>Turns the active snapshot <paramref name="key"/> into the committed, read-only snapshot <paramref name="name"/>.</summary>
    public async Task CommitAsync(string name, string key, CancellationToken cancellationToken)
    {
        var request = new Api.CommitSnapshotRequest { Snapshotter = snapshotter, Name = name, Key = key };
        await connection.UnaryAsync(o => _snapshotsClient.CommitAsync(request, o), new ContainerdCall($"committing snapshot {key} as {name}"), cancellationToken);
    }

    public async Task RemoveAsync(string key, CancellationToken cancellationToken)
    {
        var request = new Api.RemoveSnapshotRequest { Snapshotter = snapshotter, Key = key };
        await connection.UnaryAsync(o => _snapshotsClient.RemoveAsync(request, o), new ContainerdCall($"removing snapshot {key}"), cancellationToken);
    }

    /// <summary>
    /// The host directory that receives the container's writes (the overlay <c>upperdir</c>), e.g. to read or seed
    /// rootfs files without mounting; null for a mount that is not overlay.
    /// </summary>
    public static string? UpperDir(IEnumerable<Mount> mounts)
    {
        ArgumentNullException.ThrowIfNull(mounts);
        const string Prefix = "upperdir=";
        return mounts.Where(m => m.Type == "overlay")
            .SelectMany(m => m.Options)
            .FirstOrDefault(o => o.StartsWith(Prefix, StringComparison.Ordinal))?[Prefix.Length..];
    }
}
