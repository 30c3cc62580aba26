using PodMigrate.Node.Criu;

namespace PodMigrate.Agent.NodeInfo;

/// <summary>
/// The node's CRIU version and kernel features, asked of CRIU once (each question starts a `criu swrk`, ~0.1-0.2 s)
/// and kept: neither changes while the agent runs. A failed question is asked again next time.
/// </summary>
internal sealed class CriuCapabilities(CriuClient criu) : IDisposable
{
    private readonly SemaphoreSlim _lock = new(1, 1);
    private (CriuVersion Version, CriuFeatures Features)? _known;

    public async Task<(CriuVersion Version, CriuFeatures Features)> GetAsync(CancellationToken cancellationToken)
    {
        if (_known is { } known)
        {
            return known;
        }
        await _lock.WaitAsync(cancellationToken);
        try
        {
            _known ??= (await criu.VersionAsync(cancellationToken), await criu.CheckFeaturesAsync(cancellationToken));
            return _known.Value;
        }
        finally
        {
            _lock.Release();
        }
    }

    public void Dispose() => _lock.Dispose();
}
