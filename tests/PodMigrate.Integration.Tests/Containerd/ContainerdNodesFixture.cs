using PodMigrate.Core.Images;
using PodMigrate.Integration.Tests.Criu;
using PodMigrate.TestKit.Containerd;
using PodMigrate.TestKit.Registry;

namespace PodMigrate.Integration.Tests.Containerd;

/// <summary>
/// Two private containerd instances ("nodes" A and B) and a private registry serving the workload images, shared by
/// the tests of one class; each test works in its own containerd namespace. Any missing prerequisite (root,
/// containerd, docker-registry, gcc) fails InitializeAsync and with it every test, saying what is missing.
/// </summary>
public sealed class ContainerdNodesFixture : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("pm-ctrd-images-").FullName;

    public StandaloneContainerd NodeA { get; private set; } = null!;

    public StandaloneContainerd NodeB { get; private set; } = null!;

    public LocalRegistry Registry { get; private set; } = null!;

    /// <summary>e.g. 127.0.0.1:41234/podmigrate/counter:1 (plain http).</summary>
    public string CounterImage { get; private set; } = "";

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        Registry = await LocalRegistry.StartAsync(timeout.Token);
        var options = new WorkloadBuildOptions(TestPaths.WorkloadSources(), _directory, Registry.Host);
        await WorkloadImages.BuildAndPushAsync(options, Registry.Client, timeout.Token);
        CounterImage = WorkloadImages.Counter.ImageFor(Registry.Host).ToString();
        NodeA = await StandaloneContainerd.StartAsync(timeout.Token);
        NodeB = await StandaloneContainerd.StartAsync(timeout.Token);
    }

    public async Task DisposeAsync()
    {
        foreach (var disposable in new IAsyncDisposable?[] { NodeA, NodeB, Registry })
        {
            if (disposable is not null)
            {
                await disposable.DisposeAsync();
            }
        }
        Directory.Delete(_directory, recursive: true);
    }
}
