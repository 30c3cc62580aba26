using System.Runtime.CompilerServices;
using PodMigrate.Core.Images;

namespace PodMigrate.Integration.Tests.Criu;

internal static class TestPaths
{
    /// <summary>tests/workloads: PODMIGRATE_WORKLOADS, else found upwards from the build output or from this source file (artifacts may live outside the repository).</summary>
    public static string WorkloadSources()
        => WorkloadImages.LocateSources(null, Environment.GetEnvironmentVariable(WorkloadImages.SourcesEnvironmentVariable), [AppContext.BaseDirectory, SourceDirectory()]);

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
