using Google.Protobuf;
using Api = Containerd.Services.Containers.V1;
using Any = Google.Protobuf.WellKnownTypes.Any;
using Empty = Google.Protobuf.WellKnownTypes.Empty;

namespace PodMigrate.Node.Containerd;

/// <summary>What a container record holds: its image, runtime, OCI spec and the snapshot that is its rootfs.</summary>
public sealed record ContainerdContainerSpec(
    string Id,
    string Image,
    OciSpec Spec,
    string SnapshotKey,
    string Snapshotter = ContainerdSnapshots.Overlayfs,
    string Runtime = ContainerdContainers.RuncV2,
    IReadOnlyDictionary<string, string>? Labels = null);

/// <summary>Container records (metadata only: no process runs until a task is created).</summary>
public sealed class ContainerdContainers(ContainerdConnection connection)
{
    private readonly Api.Containers.ContainersClient _containers = new(connection.Invoker);

    public const string RuncV2 = "io.containerd.runc.v2";

    /// <summary>The type URL containerd expects for an OCI runtime spec carried as JSON in an Any.</summary>
    public const string OciSpecTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Spec";


    public async Task<Api.Container> CreateAsync(ContainerdContainerSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var container = new Api.Container
        {
            Id = spec.Id,
            Image = spec.Image,
            Runtime = new Api.Container.Types.Runtime { Name = spec.Runtime },
            Spec = new Any { TypeUrl = OciSpecTypeUrl, Value = ByteString.CopyFrom(OciSpecJson.Serialize(spec.Spec)) },
            Snapshotter = spec.Snapshotter,
            SnapshotKey = spec.SnapshotKey,
        };
        if (spec.Labels is not null)
        {
            foreach (var (key, value) in spec.Labels)
            {
                container.Labels[key] = value;
            }
        }
        var response = await connection.UnaryAsync(o => _containers.CreateAsync(new Api.CreateContainerRequest { Container = container }, o), new ContainerdCall($"creating container {spec.Id}"), cancellationToken);
        return response.Container;
    }

    public async Task<Api.Container> GetAsync(string id, CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _containers.GetAsync(new Api.GetContainerRequest { Id = id }, o), new ContainerdCall($"getting container {id}"), cancellationToken);
        return response.Container;
    }

    /// <summary>Containers matching containerd filters (e.g. <c>labels."app"==counter</c>); all when none are given.</summary>
    public async Task<IReadOnlyList<Api.Container>> ListAsync(CancellationToken cancellationToken, params string[] filters)
    {
        var request = new Api.ListContainersRequest();
        request.Filters.Add(filters);
        var response = await connection.UnaryAsync(o => _containers.ListAsync(request, o), new ContainerdCall("listing containers"), cancellationToken);
        return response.Containers;
    }

    /// <summary>
    /// Deletes the record. containerd does not refuse this while a task runs (it orphans the task and lets GC take the
    /// snapshot from under it), so delete the task first (<see cref="ContainerdTasks.DeleteAsync"/>).
    /// </summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
        => await connection.UnaryAsync(o => _containers.DeleteAsync(new Api.DeleteContainerRequest { Id = id }, o), new ContainerdCall($"deleting container {id}"), cancellationToken);

    /// <summary>The OCI spec stored with a container, decoded from its JSON Any.</summary>
    public static OciSpec SpecOf(Api.Container container)
    {
        ArgumentNullException.ThrowIfNull(container);
        if (container.Spec is null || container.Spec.TypeUrl != OciSpecTypeUrl)
        {
            throw new PodMigrate.Core.Errors.PodMigrateException(PodMigrate.Core.Errors.ErrorKind.DataLoss, $"container {container.Id} has no OCI spec (type url '{container.Spec?.TypeUrl}')");
        }
        return OciSpecJson.Deserialize(container.Spec.Value.Span, container.Id);
    }
}
