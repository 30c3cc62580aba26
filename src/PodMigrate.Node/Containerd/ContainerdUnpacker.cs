using System.Security.Cryptography;
using PodMigrate.Core.Errors;
using DiffApi = Containerd.Services.Diff.V1;
using Descriptor = Containerd.Types.Descriptor;

namespace PodMigrate.Node.Containerd;

/// <summary>One layer of an image as the unpacker needs it: its blob in the content store and its uncompressed digest.</summary>
public sealed record ImageLayer(string MediaType, string Digest, long Size, string DiffId)
{
    /// <summary>An uncompressed layer: its digest is its diff id.</summary>
    public static ImageLayer Uncompressed(string mediaType, string digest, long size) => new(mediaType, digest, size, digest);
}

/// <summary>
/// Unpacks image layers from the content store into a snapshotter the way containerd's own client does: for each layer,
/// an active snapshot on the chain so far, the Diff service applies the blob into it, and it is committed under the new
/// chain id; a chain already committed is reused. What CRI needs before it can mount an image (a checkpoint image is
/// mounted read-only by containerd's restore). Run it under a lease until something references the chain.
/// </summary>
public sealed class ContainerdUnpacker(ContainerdConnection connection, string snapshotter = ContainerdSnapshots.Overlayfs)
{
    private readonly DiffApi.Diff.DiffClient _diff = new(connection.Invoker);

    private static readonly TimeSpan ApplyTimeout = TimeSpan.FromMinutes(10);
    private readonly ContainerdSnapshots _snapshots = new(connection, snapshotter);

    public string Snapshotter => snapshotter;

    /// <summary>Unpacks <paramref name="layers"/> (lowest first); returns the chain id of the top, the image's rootfs.</summary>
    public async Task<string> UnpackAsync(IReadOnlyList<ImageLayer> layers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0)
        {
            throw PodMigrateException.InvalidArgument("an image needs at least one layer to unpack");
        }
        var diffIds = new List<string>(layers.Count);
        var parent = "";
        foreach (var layer in layers)
        {
            diffIds.Add(layer.DiffId);
            var chainId = OciImageJson.ChainId(diffIds);
            if (!await ExistsAsync(chainId, cancellationToken))
            {
                await ApplyAsync(layer, parent, chainId, cancellationToken);
            }
            parent = chainId;
        }
        return parent;
    }

    /// <summary>Whether the committed snapshot <paramref name="chainId"/> exists (an image unpacked before).</summary>
    public async Task<bool> ExistsAsync(string chainId, CancellationToken cancellationToken)
    {
        try
        {
            await _snapshots.StatAsync(chainId, cancellationToken);
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return false;
        }
    }

    private async Task ApplyAsync(ImageLayer layer, string parent, string chainId, CancellationToken cancellationToken)
    {
        var key = $"podmigrate-extract-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))} {chainId}";
        var mounts = await _snapshots.PrepareAsync(key, parent, cancellationToken);
        var committed = false;
        try
        {
            var request = new DiffApi.ApplyRequest { Diff = new Descriptor { MediaType = layer.MediaType, Digest = layer.Digest, Size = layer.Size } };
            request.Mounts.Add(mounts);
            var applied = await connection.UnaryAsync(o => _diff.ApplyAsync(request, o), new ContainerdCall($"applying layer {layer.Digest} onto snapshot {key}", ApplyTimeout), cancellationToken);
            if (applied.Applied.Digest != layer.DiffId)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"layer {layer.Digest} unpacked to content {applied.Applied.Digest}, but its diff id is {layer.DiffId}");
            }
            try
            {
                await _snapshots.CommitAsync(chainId, key, cancellationToken);
                committed = true;
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
            {
                // Unpacked meanwhile by someone else: theirs is the same content.
            }
        }
        finally
        {
            if (!committed)
            {
                using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await RemoveQuietlyAsync(key, cleanup.Token);
            }
        }
    }

    private async Task RemoveQuietlyAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            await _snapshots.RemoveAsync(key, cancellationToken);
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
        {
            // A compensation must not hide why it ran; the snapshot belongs to the caller's lease and goes with it.
        }
    }
}
