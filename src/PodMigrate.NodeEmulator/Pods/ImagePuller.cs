using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using Runtime.V1;
using KubeContainer = k8s.Models.V1Container;

namespace PodMigrate.NodeEmulator.Pods;

/// <summary>The image of a container, ready to create it from, or why not (a container's waiting reason and message).</summary>
internal readonly record struct ImageResult(string? ImageRef, string? Reason, string? Message)
{
    public static ImageResult Present(string imageRef) => new(imageRef, null, null);

    public static ImageResult Waiting(string reason, string message) => new(null, reason, message);
}

/// <summary>
/// kubelet's image manager (EnsureImageExists): IfNotPresent and Never use an image the node has (a checkpoint image
/// imported by the agent is one like any other); Never fails with ErrImageNeverPull when it is missing; Always pulls.
/// Failed pulls back off (ErrImagePull, then ImagePullBackOff while waiting).
/// </summary>
internal sealed class ImagePuller(CriConnection cri, KeyedBackoff backoff, TimeProvider time, ILogger logger)
{
    public async Task<ImageResult> EnsureAsync(KubeContainer container, PodSandboxConfig sandboxConfig, string backoffKey, CancellationToken cancellationToken)
    {
        var image = container.Image;
        if (string.IsNullOrEmpty(image))
        {
            return ImageResult.Waiting("InvalidImageName", $"container {container.Name} has no image");
        }
        var policy = PodCriConfig.PullPolicy(container);
        if (policy != "Always")
        {
            if (await cri.Images.ImageStatusAsync(image, cancellationToken) is { } present && !string.IsNullOrEmpty(present.Id))
            {
                return ImageResult.Present(present.Id);
            }
            if (policy == "Never")
            {
                return ImageResult.Waiting("ErrImageNeverPull", $"Container image \"{image}\" is not present with pull policy of Never");
            }
        }
        if (backoff.IsInBackOffSinceUpdate(backoffKey))
        {
            return ImageResult.Waiting("ImagePullBackOff", $"Back-off pulling image \"{image}\"");
        }
        try
        {
            var imageRef = await cri.Images.PullImageAsync(image, sandboxConfig, cancellationToken);
            backoff.Reset(backoffKey);
            EmulatorLog.ImagePulled(logger, image, imageRef);
            return ImageResult.Present(imageRef);
        }
        catch (PodMigrateException e) when (e.Kind is not ErrorKind.Cancelled)
        {
            backoff.Next(backoffKey, time.GetUtcNow());
            EmulatorLog.ImagePullFailed(logger, image, e.Message);
            return ImageResult.Waiting("ErrImagePull", e.Message);
        }
    }
}
