using PodMigrate.Core.Processes;

namespace PodMigrate.TestKit.Cli;

/// <summary>The podmigrate CLI as the tests' own build of it (TestKit references PodMigrate.Cli, so podmigrate.dll sits beside the tests).</summary>
public static class PodmigrateCli
{
    public static string DllPath
    {
        get
        {
            var cli = Path.Combine(AppContext.BaseDirectory, "podmigrate.dll");
            return File.Exists(cli)
                ? cli
                : throw new InvalidOperationException($"the podmigrate CLI is not beside the tests ({cli}): TestKit references PodMigrate.Cli for it");
        }
    }

    /// <summary>Runs `podmigrate ARGS` to its end; the result carries the exit code and both outputs.</summary>
    public static Task<ProcessResult> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, IReadOnlyDictionary<string, string?>? environment = null)
        => ProcessRunner.RunAsync(
            new ProcessSpec("dotnet", [DllPath, .. arguments]) { Timeout = TimeSpan.FromSeconds(60), Environment = environment ?? new Dictionary<string, string?>() },
            cancellationToken);
}
