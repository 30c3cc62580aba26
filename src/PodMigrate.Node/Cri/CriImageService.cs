using PodMigrate.Core.Errors;
using Runtime.V1;

namespace PodMigrate.Node.Cri;

/// <summary>CRI v1 ImageService: what a kubelet needs to make an image present.</summary>
public sealed class CriImageService
{
    private static readonly TimeSpan PullTimeout = TimeSpan.FromMinutes(5);

    private readonly CriConnection _connection;
    private readonly ImageService.ImageServiceClient _images;

    internal CriImageService(CriConnection connection)
    {
        _connection = connection;
        _images = new ImageService.ImageServiceClient(connection.Invoker);
    }

    /// <summary>Pulls <paramref name="image"/>; returns the image reference the runtime resolved it to (its id).</summary>
    public async Task<string> PullImageAsync(string image, PodSandboxConfig? sandboxConfig, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        var request = new PullImageRequest { Image = new ImageSpec { Image = image }, SandboxConfig = sandboxConfig };
        var response = await _connection.CallAsync("PullImage", o => _images.PullImageAsync(request, o), PullTimeout, $"image {image}", cancellationToken);
        return response.ImageRef;
    }

    /// <summary>The image if the node has it, else null (CRI answers "not present" with an empty status, not NotFound).</summary>
    public async Task<Image?> ImageStatusAsync(string image, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        try
        {
            var response = await _connection.CallAsync("ImageStatus", o => _images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } }, o), CriRuntimeService.DefaultTimeout, $"image {image}", cancellationToken);
            return response.Image;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Removes an image the way a kubelet's image GC does: every name the runtime keeps for it goes, including the
    /// ones it made itself (containerd's CRI keeps an image record named by the image id). An absent image is no error.
    /// </summary>
    public async Task RemoveImageAsync(string image, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(image);
        await _connection.CallAsync("RemoveImage", o => _images.RemoveImageAsync(new RemoveImageRequest { Image = new ImageSpec { Image = image } }, o), CriRuntimeService.DefaultTimeout, $"image {image}", cancellationToken);
    }

    public async Task<IReadOnlyList<Image>> ListImagesAsync(CancellationToken cancellationToken)
    {
        var response = await _connection.CallAsync("ListImages", o => _images.ListImagesAsync(new ListImagesRequest(), o), CriRuntimeService.DefaultTimeout, "", cancellationToken);
        return response.Images;
    }
}
