using System.Runtime.CompilerServices;
using PodMigrate.Core.Processes;

namespace PodMigrate.TestKit.Cluster;

/// <summary>Runs scripts/cluster.sh of this repository with a given environment (for the shared or a private instance).</summary>
public static class ClusterScript
{
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static string Path => System.IO.Path.Combine(RepositoryRoot, "scripts", "cluster.sh");

    public static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string?> environment, CancellationToken cancellationToken)
        => ProcessRunner.RunAsync(
            new ProcessSpec("/bin/bash", [Path, .. arguments]) { Environment = environment, Timeout = TimeSpan.FromMinutes(5) },
            cancellationToken);

    /// <summary>
    /// PODMIGRATE_REPO when set (scripts/test.sh sets it), else the folder holding PodMigrate.sln above the test
    /// binaries or, when they were built elsewhere (--artifacts-path), above this source file.
    /// </summary>
    private static string FindRepositoryRoot([CallerFilePath] string sourceFile = "")
    {
        if (Environment.GetEnvironmentVariable("PODMIGRATE_REPO") is { Length: > 0 } repo)
        {
            return repo;
        }
        foreach (var start in new[] { AppContext.BaseDirectory, System.IO.Path.GetDirectoryName(sourceFile) ?? "/" })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(System.IO.Path.Combine(dir.FullName, "PodMigrate.sln")))
                {
                    return dir.FullName;
                }
            }
        }
        throw new InvalidOperationException($"cannot find the repository (PodMigrate.sln) above {AppContext.BaseDirectory}; set PODMIGRATE_REPO");
    }
}
