using System.Diagnostics;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Node.Criu;

namespace PodMigrate.Integration.Tests.Criu;

/// <summary>CRIU 4.x through its RPC protocol (criu swrk), on the real kernel. Needs root; fails (not skips) without it.</summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
public sealed class CriuRpcTests : IDisposable
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromMinutes(2);

    private readonly CancellationTokenSource _timeout = new(TestTimeout);
    private readonly string _directory = Directory.CreateTempSubdirectory("pm-criu-").FullName;
    private readonly CriuClient _criu = new();

    public CriuRpcTests()
    {
        Environment.IsPrivilegedProcess.ShouldBeTrue("CRIU needs root: run the integration tests as root");
    }

    private CancellationToken Token => _timeout.Token;

    [Fact]
    public async Task Check_passes_and_version_is_4x()
    {
        await _criu.CheckAsync(Token);

        var version = await _criu.VersionAsync(Token);

        version.Major.ShouldBe(4, $"CRIU {version} answered; this kernel needs 4.x");
        version.Number.ShouldBeGreaterThanOrEqualTo(31600, "Kubernetes' minimum is 3.16");
    }

    [Fact]
    public async Task Feature_check_reports_what_this_kernel_has()
    {
        var features = await _criu.CheckFeaturesAsync(Token);

        // ENVIRONMENT.md: soft-dirty tracking is off on these VMs, userfaultfd and pidfd are on.
        features.ShouldBe(new CriuFeatures(MemoryTracking: false, LazyPages: true, PidfdStore: true));
    }

    [Fact]
    public async Task A_dumped_and_restored_counter_continues_from_its_dumped_value()
    {
        var counterFile = Path.Combine(_directory, "count");
        var images = Directory.CreateDirectory(Path.Combine(_directory, "images")).FullName;
        using var counter = await StartCounterAsync(counterFile);
        var pid = counter.Id;
        int? restoredPid = null;
        try
        {
            await CounterProbe.WaitForAsync(counterFile, 10, Token);

            await _criu.DumpAsync(new CriuDumpOptions(pid, images, LeaveRunning: false), Token);

            // The dump killed it: reap it, or its pid stays taken and the restore cannot have it back.
            await counter.WaitForExitAsync(Token);
            var dumped = CounterProbe.Read(counterFile)!.Value;
            File.Exists(Path.Combine(images, "inventory.img")).ShouldBeTrue();
            await Task.Delay(300, Token);
            CounterProbe.Read(counterFile).ShouldBe(dumped, "nothing may count while the process is dumped");

            restoredPid = await _criu.RestoreAsync(new CriuRestoreOptions(images), Token);

            restoredPid.ShouldBe(pid);
            var seen = await CounterProbe.WaitForAsync(counterFile, dumped + 10, Token);
            seen.ShouldAllBe(value => value >= dumped, $"the restored counter must go on from {dumped}, never restart low");
        }
        finally
        {
            KillByPid(restoredPid ?? pid);
        }
    }

    [Fact]
    public async Task A_failed_dump_is_an_error_carrying_the_criu_log()
    {
        var images = Directory.CreateDirectory(Path.Combine(_directory, "images")).FullName;

        // No such process: the highest pid the kernel can hand out is below this one.
        var error = await Should.ThrowAsync<PodMigrateException>(() => _criu.DumpAsync(new CriuDumpOptions(int.MaxValue - 1, images), Token));

        error.Kind.ShouldBe(ErrorKind.Internal);
        error.Message.ShouldContain($"dumping process tree {int.MaxValue - 1}");
        error.Details.ShouldNotBeNull().ShouldContain("Error");
        error.Details.ShouldContain("dump.log");
    }

    [Fact]
    public async Task Dumping_into_a_missing_directory_is_NotFound()
    {
        var error = await Should.ThrowAsync<PodMigrateException>(
            () => _criu.DumpAsync(new CriuDumpOptions(Environment.ProcessId, Path.Combine(_directory, "nope")), Token));

        error.Kind.ShouldBe(ErrorKind.NotFound);
    }

    public void Dispose()
    {
        _timeout.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>
    /// The counter workload as its own session leader (setsid execs in place: our child is not a group leader), so
    /// CRIU can dump it without shell_job; stdio are pipes to us, which CRIU re-creates on restore.
    /// </summary>
    private async Task<Process> StartCounterAsync(string counterFile)
    {
        var binary = await WorkloadImages.CompileAsync(WorkloadImages.Counter, TestPaths.WorkloadSources(), Path.Combine(_directory, "bin"), "gcc", Token);
        var start = new ProcessStartInfo("setsid") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(binary);
        start.Environment["COUNTER_FILE"] = counterFile;
        start.Environment["COUNTER_INTERVAL_MS"] = "20";
        start.Environment["PORT"] = PodMigrate.TestKit.Registry.LocalRegistry.FreeTcpPort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var process = Process.Start(start)!;
        try
        {
            // setsid must exec in place (not fork) for our child to be the counter: wait for the exec to show.
            using var exec = CancellationTokenSource.CreateLinkedTokenSource(Token);
            exec.CancelAfter(TimeSpan.FromSeconds(5));
            while ((await File.ReadAllTextAsync($"/proc/{process.Id}/comm", exec.Token)).Trim() != "counter")
            {
                await Task.Delay(10, exec.Token);
            }
            return process;
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A restored process is not our child (criu's, then init's) and has the pid of one that was: .NET's Process still
    /// takes that pid for the exited child, so signal it with kill(2) and wait until it is gone (or a zombie for init).
    /// </summary>
    private static void KillByPid(int pid)
    {
        if (Kill(pid, 9) != 0)
        {
            return;
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !IsGone(pid))
        {
            Thread.Sleep(20);
        }
    }

    private static bool IsGone(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return true;
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
