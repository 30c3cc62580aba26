using PodMigrate.Core.Archive;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tls;
using PodMigrate.Core.Tests.Tls;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.Store;

/// <summary>Progress that blocks the writer at its first report until the test releases it: a barrier mid-publish.</summary>
internal sealed class BlockingProgress : IProgress<ArchiveProgress>, IDisposable
{
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ManualResetEventSlim _release = new();

    public Task Reached => _reached.Task;

    public void Release() => _release.Set();

    public void Report(ArchiveProgress value)
    {
        _reached.TrySetResult();
        if (!_release.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("the test never released the publish");
        }
    }

    public void Dispose() => _release.Dispose();
}

internal static class StoreTestKit
{
    public static readonly DateTimeOffset Start = new(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);

    /// <summary>A store that signs with an agent certificate of the tests' signing CA and trusts that CA, as an agent's does.</summary>
    public static FileSystemCheckpointStore NewStore(string root, TimeProvider time, long reserve = 0, CheckpointSignatures? signatures = null)
        => new(new FileSystemCheckpointStoreOptions { Root = root, ReserveBytes = reserve, Signatures = signatures ?? SigningKit.Agent("node-a", time) }, time);

    public static CheckpointPublishRequest Request(string id, string source, string pod = "counter", bool pinned = false)
        => new()
        {
            Id = CheckpointId.Parse(id),
            SourceDirectory = source,
            SourceNode = "node-a",
            Pod = new PodReference("default", pod, "uid-" + pod),
            Container = new ContainerReference("main", "abc123"),
            ImageReference = "localhost:5000/podmigrate/counter:1",
            CriuVersion = "4.1.1",
            Runtime = "io.containerd.runc.v2",
            Labels = new Dictionary<string, string> { ["test"] = "yes" },
            Pinned = pinned,
        };

    public static string Source(TempDirectory temp, int pagesBytes = 256 << 10)
        => ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source-" + Guid.NewGuid().ToString("N")), pagesBytes);
}
