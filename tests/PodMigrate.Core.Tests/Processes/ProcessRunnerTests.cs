using System.Diagnostics;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Processes;

namespace PodMigrate.Core.Tests.Processes;

[Trait("Category", "Unit")]
public sealed class ProcessRunnerTests
{
    [Fact(Timeout = 30_000)]
    public async Task Captures_stdout_stderr_and_exit_code_and_passes_arguments_verbatim()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var result = await ProcessRunner.RunAsync(
            new ProcessSpec("/bin/sh", ["-c", "printf '%s|' \"$1\" \"$2\"; echo oops >&2; exit 3", "sh", "a b", "$HOME;*"]),
            timeout.Token);

        result.ExitCode.ShouldBe(3);
        result.StandardOutput.ShouldBe("a b|$HOME;*|");
        result.StandardError.ShouldBe("oops\n");
        var error = Should.Throw<PodMigrateException>(() => result.EnsureSuccess());
        error.Message.ShouldContain("exited with code 3");
        error.Message.ShouldContain("'a b'");
        error.Details.ShouldBe("oops\n");
    }

    [Fact(Timeout = 30_000)]
    public async Task Environment_is_added_and_removed()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var result = await ProcessRunner.RunCheckedAsync(
            new ProcessSpec("/bin/sh", ["-c", "echo \"$PM_SET-${HOME:-unset}\""])
            {
                Environment = new Dictionary<string, string?> { ["PM_SET"] = "yes", ["HOME"] = null },
            },
            timeout.Token);

        result.StandardOutput.ShouldBe("yes-unset\n");
    }

    [Fact(Timeout = 30_000)]
    public async Task Timeout_kills_the_whole_tree_and_is_DeadlineExceeded()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var pidFile = Path.Combine(Path.GetTempPath(), $"pm-runner-{Guid.NewGuid():N}");
        try
        {
            var stopwatch = Stopwatch.StartNew();
            var error = await Should.ThrowAsync<PodMigrateException>(() => ProcessRunner.RunAsync(
                new ProcessSpec("/bin/sh", ["-c", $"sleep 60 & echo $! > {pidFile}; wait"]) { Timeout = TimeSpan.FromMilliseconds(500) },
                timeout.Token));

            error.Kind.ShouldBe(ErrorKind.DeadlineExceeded);
            stopwatch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10));
            var child = int.Parse(await File.ReadAllTextAsync(pidFile, timeout.Token));
            ProcessGone(child).ShouldBeTrue($"the grandchild sleep (pid {child}) survived the kill");
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    [Fact(Timeout = 30_000)]
    public async Task Cancellation_kills_the_process_and_throws_OperationCanceled()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var stopwatch = Stopwatch.StartNew();

        await Should.ThrowAsync<OperationCanceledException>(() => ProcessRunner.RunAsync(new ProcessSpec("/bin/sleep", ["60"]), cancel.Token));

        stopwatch.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(10));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_missing_executable_is_NotFound()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var error = await Should.ThrowAsync<PodMigrateException>(() => ProcessRunner.RunAsync(new ProcessSpec("/nonexistent/tool", ["x"]), timeout.Token));

        error.Kind.ShouldBe(ErrorKind.NotFound);
        error.Message.ShouldContain("/nonexistent/tool");
    }

    private static bool ProcessGone(int pid)
    {
        // A killed child may linger a moment as a zombie until init reaps it; a zombie has state Z.
        var stat = $"/proc/{pid}/stat";
        for (var i = 0; i < 50; i++)
        {
            if (!File.Exists(stat) || File.ReadAllText(stat).Split(' ')[2] == "Z")
            {
                return true;
            }

            Thread.Sleep(20);
        }

        return false;
    }
}
