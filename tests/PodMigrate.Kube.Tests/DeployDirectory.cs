namespace PodMigrate.Kube.Tests;

/// <summary>
/// The repository's deploy/ directory, found from the test assembly upwards (the solution file marks the root). Tests
/// read the source tree itself, not a copy in bin/: a copy keeps manifests that were moved or deleted since.
/// </summary>
internal static class DeployDirectory
{
    public static string Path { get; } = Find();

    /// <summary>"deploy/50-agent-daemonset.yaml": how errors and tests name a file.</summary>
    public static string Relative(string path) => System.IO.Path.Combine("deploy", System.IO.Path.GetRelativePath(Path, path));

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var deploy = System.IO.Path.Combine(directory.FullName, "deploy");
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "PodMigrate.sln")) && Directory.Exists(deploy))
            {
                return deploy;
            }
        }
        throw new DirectoryNotFoundException($"no PodMigrate.sln with a deploy/ directory above {AppContext.BaseDirectory}: these tests read the repository's deploy/");
    }
}
