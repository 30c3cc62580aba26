using PodMigrate.Cli.Bench;

namespace PodMigrate.Integration.Tests.Bench;

/// <summary>
/// The bench's figures and plots (issue 11 item 7): the series, bars and guard figures come from the bench's result
/// records (pure mappings), and the writer turns them into real PNG files.
/// </summary>
[Trait("Category", "Unit")]
public sealed class BenchPlotTests
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    [Fact]
    public void Downtime_series_are_the_rows_medians_by_method_and_the_runtimeclass_pause_with_the_floor_beside()
    {
        var rows = new[] { Row(256, "direct", downtime: 2.5), Row(64, "direct", downtime: 0.8), Row(64, "cri-image", downtime: 1.1) };
        var runtimeClass = new[] { Sample(64, seen: 1.0, floor: 0.5), Sample(256, seen: 3.0, floor: 1.5), Sample(256, seen: 5.0, floor: 2.5) };

        var data = BenchPlotData.From(rows, runtimeClass);

        var direct = data.Downtime.Single(s => s.Name == "direct (zstd) downtime");
        direct.SizesMib.ShouldBe([64, 256], "sizes ascending, whatever order the rows came in");
        direct.Seconds.ShouldBe([0.8, 2.5]);
        data.Downtime.Single(s => s.Name == "cri-image (zstd) downtime").Seconds.ShouldBe([1.1]);
        var pause = data.Downtime.Single(s => s.Name == "runtimeclass (zstd) pause seen");
        pause.SizesMib.ShouldBe([64, 256]);
        pause.Seconds.ShouldBe([1.0, 4.0], "the median of the repeats of a size");
        data.Downtime.Single(s => s.Name.StartsWith("floor", StringComparison.Ordinal)).Seconds.ShouldBe([0.5, 2.0]);
    }

    [Fact]
    public void Without_runtimeclass_samples_the_floor_comes_from_the_agent_rows()
    {
        var data = BenchPlotData.From([Row(64, "direct", downtime: 0.8, floorDump: 0.2, floorRestore: 0.3)], []);

        data.Downtime.Single(s => s.Name.StartsWith("floor", StringComparison.Ordinal)).Seconds.ShouldBe([0.5]);
    }

    [Fact]
    public void A_runtimeclass_bar_is_precheck_then_the_pause_critical_path_and_its_shares_sum_to_one()
    {
        var data = BenchPlotData.From([], [Sample(256, seen: 3, floor: 1, precheck: 0.5, path: [1.0, -0.01, 0.5, 2.0])]);

        var bar = data.Phases.ShouldHaveSingleItem();
        bar.Label.ShouldBe("256 MiB\nruntimeclass");
        bar.Segments.Select(s => s.Phase).ShouldBe(["precheck", .. RuntimeClassSample.CriticalPathSteps]);
        bar.Segments.Select(s => s.Seconds).ShouldBe([0.5, 1.0, 0.0, 0.5, 2.0], "an overlapping (negative) step counts as zero");
        bar.Total.ShouldBe(4.0);
        bar.Shares.Sum().ShouldBe(1.0, 1e-9);
        bar.Shares[4].ShouldBe(0.5);
        data.PhaseNames.ShouldBe(["precheck", .. RuntimeClassSample.CriticalPathSteps]);
    }

    [Fact]
    public void An_agent_bar_is_its_checkpoint_phases_then_its_restore_phases()
    {
        var data = BenchPlotData.From([Row(64, "direct", downtime: 1)], []);

        var bar = data.Phases.ShouldHaveSingleItem();
        bar.Segments.Select(s => s.Phase).ShouldBe(["checkpoint.freeze", "checkpoint.dump", "restore.restore"]);
        bar.Segments.Select(s => s.Seconds).ShouldBe([0.1, 0.4, 0.5]);
    }

    [Fact]
    public void Guard_figures_take_precheck_and_checkpoint_as_the_capture_and_fit_its_fixed_cost_and_rate()
    {
        // capture = 1 s + MiB / 50 MiB/s exactly, split between precheck (0.2 s) and checkpoint.
        var runtimeClass = new[] { 64, 256, 1024 }.Select(mib => Sample(mib, seen: 2, floor: 1, precheck: 0.2, checkpoint: 0.8 + (mib / 50.0))).ToArray();

        var rows = GuardFigures.Summarize(GuardFigures.Points([], runtimeClass));

        rows.Select(r => r.SizeMib).ShouldBe([64, 256, 1024]);
        rows[1].Precheck.ShouldBe(0.2, 1e-9);
        rows[1].Capture.ShouldBe(1 + (256 / 50.0), 1e-9);
        rows[1].Downtime.ShouldBe(2);
        var fit = GuardFigures.Fit(rows).ShouldHaveSingleItem();
        fit.Method.ShouldBe("runtimeclass");
        fit.FixedSeconds.ShouldBe(1, 1e-6);
        fit.MibPerSecond.ShouldBe(50, 1e-6);
        fit.EstimateSeconds(512).ShouldBe(1 + (512 / 50.0), 1e-6);
    }

    [Fact]
    public void No_fit_from_a_single_size_or_a_capture_that_does_not_grow()
    {
        GuardFigures.Fit(GuardFigures.Summarize(GuardFigures.Points([Row(64, "direct", downtime: 1)], []))).ShouldBeEmpty();
        var flat = new[] { Sample(64, seen: 1, floor: 1, checkpoint: 3), Sample(256, seen: 1, floor: 1, checkpoint: 2) };
        GuardFigures.Fit(GuardFigures.Summarize(GuardFigures.Points([], flat))).ShouldBeEmpty();
    }

    [Fact]
    public void The_writer_writes_both_plots_as_real_PNG_files()
    {
        var directory = Directory.CreateTempSubdirectory("podmigrate-plots-");
        try
        {
            var data = BenchPlotData.From(
                [Row(64, "direct", downtime: 0.8), Row(256, "direct", downtime: 2.5)],
                [Sample(64, seen: 1, floor: 0.5), Sample(256, seen: 3, floor: 1.5)]);

            var written = BenchPlotWriter.Write(data, directory.FullName, "test");

            written.Select(p => Path.GetFileName(p)).ShouldBe([BenchPlotWriter.DowntimeFile, BenchPlotWriter.PhasesFile]);
            foreach (var path in written)
            {
                var bytes = File.ReadAllBytes(path);
                bytes.Take(PngSignature.Length).ShouldBe(PngSignature, $"{path} is a PNG");
                bytes.Length.ShouldBeGreaterThan(10_000, $"{path} has a drawn plot in it, not an empty canvas");
            }
            string[] files = [.. directory.GetFiles().Select(f => f.Name).Order(StringComparer.Ordinal)];
            files.ShouldBe(new[] { BenchPlotWriter.DowntimeFile, BenchPlotWriter.PhasesFile }, customMessage: "no staging file is left");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_writer_writes_nothing_without_data()
    {
        var directory = Directory.CreateTempSubdirectory("podmigrate-plots-");
        try
        {
            BenchPlotWriter.Write(BenchPlotData.From([], []), directory.FullName, "empty").ShouldBeEmpty();
            directory.GetFiles().ShouldBeEmpty();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static MigrationBenchRow Row(int mib, string method, double downtime, double floorDump = 0.2, double floorRestore = 0.3)
        => new(
            mib, "zstd", method, 1,
            new Dictionary<string, double> { ["freeze"] = 0.1, ["dump"] = 0.4 },
            0.5, 0.5, downtime, mib, mib,
            floorDump, 0.05, 0.1, mib,
            new Dictionary<string, double> { ["restore"] = 0.5 },
            0.5, 0.1, 0.05, floorRestore,
            DigestPass: true, FloorDigestPass: true);

    private static RuntimeClassSample Sample(int mib, double seen, double floor, double precheck = 0.1, double checkpoint = 1, double[]? path = null)
    {
        var steps = path ?? [0.4, 0, 0.1, 0.5];
        return new RuntimeClassSample(
            mib, 1, "zstd",
            new FloorSample(TimeSpan.FromSeconds(floor / 2), TimeSpan.FromSeconds(floor / 2), (long)mib << 20, DigestMatches: true),
            new Dictionary<string, TimeSpan> { ["precheck"] = TimeSpan.FromSeconds(precheck), ["checkpoint"] = TimeSpan.FromSeconds(checkpoint) },
            RuntimeClassSample.CriticalPathSteps.Select((step, i) => (step, i)).ToDictionary(x => x.step, x => TimeSpan.FromSeconds(steps[x.i])),
            TimeSpan.FromSeconds(seen),
            TimeSpan.FromSeconds(seen),
            TimeSpan.FromSeconds(seen + 5),
            DigestMatches: true);
    }
}
