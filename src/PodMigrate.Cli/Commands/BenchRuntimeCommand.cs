using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// <c>podmigrate bench runtime</c>: the pass-through overhead of podmigrate-runc (issue 9 item 1, goal under 5 ms a call).
/// The same cheap runc calls, N times each, through runc directly and through podmigrate-runc, interleaved call by call
/// in one run (the machine's load hits both alike): wall time mean/p50/p95, CPU time (user + system of the child,
/// from this process's cutime/cstime), and the difference. A third pair isolates the runtime's own start-up: the
/// runtime exec'ing /bin/true (PODMIGRATE_RUNC) against /bin/true itself.
/// `state` runs against a throwaway container (busybox sleep) the verb creates with runc and removes after.
/// Processes are started with <see cref="Process"/> directly, not the project's process wrapper: what is measured is
/// one fork + exec + wait, and the wrapper's capture and timeout machinery would be measured with it.
/// </summary>
internal static class BenchRuntimeCommand
{
    public static Command AddTo(Command bench)
    {
        bench.Subcommands.Add(Create());
        return bench;
    }

    private static Command Create()
    {
        var runtime = new Option<string>("--runtime") { Description = "The runtime binary", DefaultValueFactory = _ => "/opt/podmigrate/runtime/podmigrate-runc" };
        var runc = new Option<string>("--runc") { Description = "runc (what the runtime execs)", DefaultValueFactory = _ => "/usr/sbin/runc" };
        var calls = new Option<int>("--calls", "-n") { Description = "Calls per command and binary", DefaultValueFactory = _ => 200 };
        var busybox = new Option<string>("--busybox") { Description = "A static busybox for the `state` container", DefaultValueFactory = _ => "/bin/busybox" };
        var output = CliCommon.OutputOption();
        var command = new Command("runtime", "Per-call overhead of podmigrate-runc against runc itself: --version, list, state of a real container, and the runtime's own start-up");
        foreach (var option in new Option[] { runtime, runc, calls, busybox, output })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, cancellationToken) => ExitCodes.RunAsync(() =>
        {
            var n = parse.GetValue(calls);
            if (n < 1)
            {
                throw PodMigrateException.InvalidArgument("--calls must be at least 1");
            }

            var rows = Run(parse.GetValue(runtime)!, parse.GetValue(runc)!, parse.GetValue(busybox)!, n, cancellationToken);
            if (parse.IsJson(output))
            {
                Console.WriteLine(JsonSerializer.Serialize(rows.Select(r => r.ToJson()).ToArray()));
            }
            else
            {
                WriteTable(rows, n);
            }

            return Task.FromResult(ExitCodes.Ok);
        }, cancellationToken));
        return command;
    }

    private sealed record Series(double[] WallMs, double CpuMs)
    {
        public double Mean => WallMs.Average();

        public double Percentile(double p)
        {
            var sorted = WallMs.Order().ToArray();
            return sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        }
    }

    private sealed record Row(string Call, Series Direct, Series Runtime)
    {
        public JsonObject ToJson() => new()
        {
            ["call"] = Call,
            ["calls"] = Direct.WallMs.Length,
            ["direct"] = Summary(Direct),
            ["runtime"] = Summary(Runtime),
            ["overheadMeanMs"] = Runtime.Mean - Direct.Mean,
            ["overheadP50Ms"] = Runtime.Percentile(0.5) - Direct.Percentile(0.5),
            ["overheadCpuMs"] = Runtime.CpuMs - Direct.CpuMs,
        };

        private static JsonObject Summary(Series s) => new()
        {
            ["meanMs"] = s.Mean,
            ["p50Ms"] = s.Percentile(0.5),
            ["p95Ms"] = s.Percentile(0.95),
            ["cpuMs"] = s.CpuMs,
        };
    }

    private static List<Row> Run(string runtime, string runc, string busybox, int n, CancellationToken cancellationToken)
    {
        foreach (var binary in new[] { runtime, runc })
        {
            if (!File.Exists(binary))
            {
                throw PodMigrateException.FailedPrecondition($"{binary} does not exist (scripts/setup.sh publishes the runtime)");
            }
        }

        var root = Directory.CreateTempSubdirectory("podmigrate-bench-runtime-").FullName;
        var stateRoot = Path.Combine(root, "runc-root");
        var containerId = $"pm-bench-{Environment.ProcessId}";
        var rows = new List<Row>();
        var started = false;
        try
        {
            var viaRuntime = new Dictionary<string, string> { ["PODMIGRATE_RUNC"] = runc };
            rows.Add(Measure("--version", runc, runtime, ["--version"], viaRuntime, n, cancellationToken));
            rows.Add(Measure("list", runc, runtime, ["--root", stateRoot, "list"], viaRuntime, n, cancellationToken));
            started = StartContainer(runc, busybox, root, stateRoot, containerId);
            rows.Add(Measure("state (running container)", runc, runtime, ["--root", stateRoot, "state", containerId], viaRuntime, n, cancellationToken));
            rows.Add(Measure("own start-up (exec /bin/true)", "/bin/true", runtime, ["--version"],
                new Dictionary<string, string> { ["PODMIGRATE_RUNC"] = "/bin/true" }, n, cancellationToken));
        }
        finally
        {
            if (started)
            {
                Call(runc, ["--root", stateRoot, "delete", "--force", containerId], null);
            }

            Directory.Delete(root, recursive: true);
        }

        return rows;
    }

    /// <summary>The direct and the runtime call alternate (which goes first alternates too), so load drifts hit both alike.</summary>
    private static Row Measure(string name, string direct, string runtime, string[] args, Dictionary<string, string> runtimeEnvironment, int n, CancellationToken cancellationToken)
    {
        Call(direct, args, null); // warm the page cache for both
        Call(runtime, args, runtimeEnvironment);
        var directWall = new double[n];
        var runtimeWall = new double[n];
        double directCpu = 0, runtimeCpu = 0;
        for (var i = 0; i < n; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (i % 2 == 0)
            {
                (directWall[i], var c1) = Call(direct, args, null);
                (runtimeWall[i], var c2) = Call(runtime, args, runtimeEnvironment);
                directCpu += c1;
                runtimeCpu += c2;
            }
            else
            {
                (runtimeWall[i], var c2) = Call(runtime, args, runtimeEnvironment);
                (directWall[i], var c1) = Call(direct, args, null);
                directCpu += c1;
                runtimeCpu += c2;
            }
        }

        return new Row(name, new Series(directWall, directCpu / n), new Series(runtimeWall, runtimeCpu / n));
    }

    /// <summary>One call: wall milliseconds and the child's CPU milliseconds; a failed call fails the bench.</summary>
    private static (double WallMs, double CpuMs) Call(string binary, string[] args, Dictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? [])
        {
            start.Environment[key] = value;
        }

        var cpuBefore = ChildrenCpuTicks();
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new PodMigrateException(ErrorKind.Internal, $"could not start {binary}");
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        var wall = clock.Elapsed.TotalMilliseconds;
        var cpu = (ChildrenCpuTicks() - cpuBefore) * 1000.0 / TicksPerSecond;
        if (process.ExitCode != 0)
        {
            throw new PodMigrateException(ErrorKind.Internal, $"{binary} {string.Join(' ', args)} exited {process.ExitCode}: {stderr.Trim()} {stdout.Trim()}");
        }

        return (wall, cpu);
    }

    /// <summary>USER_HZ: the unit of /proc/self/stat's cutime and cstime (100 on Linux).</summary>
    private const double TicksPerSecond = 100;

    /// <summary>cutime + cstime of /proc/self/stat: CPU time of the children this process waited for.</summary>
    private static long ChildrenCpuTicks()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // After "pid (comm) ", fields[0] is state (field 3): cutime is field 16, cstime field 17.
        return long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
    }

    /// <summary>A container that only sleeps (busybox in an otherwise empty rootfs), its stdio on /dev/null.</summary>
    private static bool StartContainer(string runc, string busybox, string root, string stateRoot, string id)
    {
        if (!File.Exists(busybox))
        {
            throw PodMigrateException.FailedPrecondition($"{busybox} does not exist (Debian's busybox-static): the `state` series needs it");
        }

        var bundle = Path.Combine(root, "bundle");
        var rootfs = Path.Combine(bundle, "rootfs");
        Directory.CreateDirectory(rootfs);
        File.Copy(busybox, Path.Combine(rootfs, "busybox"));
        var start = new ProcessStartInfo(runc) { UseShellExecute = false, WorkingDirectory = bundle, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("spec");
        using (var spec = Process.Start(start)!)
        {
            spec.WaitForExit();
        }

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(bundle, "config.json")))!;
        config["process"]!["terminal"] = false;
        config["process"]!["args"] = new JsonArray("/busybox", "sleep", "3600");
        File.WriteAllText(Path.Combine(bundle, "config.json"), config.ToJsonString());
        // runc run --detach hands its stdio to the container: it gets pipes whose read ends this process closes at once
        // (sleep writes nothing; reading them would wait for the container's end).
        var run = new ProcessStartInfo(runc) { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--root", stateRoot, "run", "--detach", "--bundle", bundle, id })
        {
            run.ArgumentList.Add(a);
        }

        using var process = Process.Start(run) ?? throw new PodMigrateException(ErrorKind.Internal, $"could not start {runc}");
        process.StandardInput.Close();
        process.StandardOutput.Close();
        process.StandardError.Close();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw PodMigrateException.FailedPrecondition($"runc run of the bench container failed (exit {process.ExitCode}; it needs root)");
        }

        return true;
    }

    private static void WriteTable(List<Row> rows, int n)
    {
        Console.WriteLine($"{n} calls each, interleaved; wall ms (mean / p50 / p95) and CPU ms (mean, user + system)");
        Console.WriteLine($"{"call",-30} {"runc mean",9} {"p50",6} {"p95",6} {"cpu",6}   {"runtime mean",12} {"p50",6} {"p95",6} {"cpu",6}   {"overhead mean",13} {"p50",6} {"cpu",6}");
        foreach (var r in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Call,-30} {r.Direct.Mean,9:0.00} {r.Direct.Percentile(0.5),6:0.00} {r.Direct.Percentile(0.95),6:0.00} {r.Direct.CpuMs,6:0.00}   {r.Runtime.Mean,12:0.00} {r.Runtime.Percentile(0.5),6:0.00} {r.Runtime.Percentile(0.95),6:0.00} {r.Runtime.CpuMs,6:0.00}   {r.Runtime.Mean - r.Direct.Mean,13:0.00} {r.Runtime.Percentile(0.5) - r.Direct.Percentile(0.5),6:0.00} {r.Runtime.CpuMs - r.Direct.CpuMs,6:0.00}"));
        }
    }
}
