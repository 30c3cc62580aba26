using System.Diagnostics.Metrics;
using PodMigrate.Core.Metrics;

namespace PodMigrate.Core.Tests.Metrics;

[Trait("Category", "Unit")]
public sealed class PrometheusExporterTests
{
    [Fact]
    public void Counter_is_rendered_as_total_per_label_set()
    {
        using var meter = new Meter($"test.{Guid.NewGuid():N}");
        using var exporter = new PrometheusExporter(meter.Name);
        var failures = meter.CreateCounter<long>("podmigrate.checkpoint.failures", description: "Failed checkpoints by kind");

        failures.Add(1, new KeyValuePair<string, object?>("kind", "DataLoss"));
        failures.Add(2, new KeyValuePair<string, object?>("kind", "DataLoss"));
        failures.Add(1, new KeyValuePair<string, object?>("kind", "Unavailable"));

        var text = exporter.Scrape();
        text.ShouldContain("# HELP podmigrate_checkpoint_failures_total Failed checkpoints by kind\n");
        text.ShouldContain("# TYPE podmigrate_checkpoint_failures_total counter\n");
        text.ShouldContain("podmigrate_checkpoint_failures_total{kind=\"DataLoss\"} 3\n");
        text.ShouldContain("podmigrate_checkpoint_failures_total{kind=\"Unavailable\"} 1\n");
    }

    [Fact]
    public void Histogram_buckets_are_cumulative_with_sum_and_count_and_unit_suffix()
    {
        using var meter = new Meter($"test.{Guid.NewGuid():N}");
        using var exporter = new PrometheusExporter(meter.Name);
        var duration = meter.CreateHistogram<double>("podmigrate.phase.duration", unit: "s");
        var phase = new KeyValuePair<string, object?>("phase", "dump");

        duration.Record(0.004, phase);
        duration.Record(0.3, phase);
        duration.Record(400, phase);

        var lines = exporter.Scrape().Split('\n');
        lines.ShouldContain("# TYPE podmigrate_phase_duration_seconds histogram");
        lines.ShouldContain("podmigrate_phase_duration_seconds_bucket{phase=\"dump\",le=\"0.005\"} 1");
        lines.ShouldContain("podmigrate_phase_duration_seconds_bucket{phase=\"dump\",le=\"0.25\"} 1");
        lines.ShouldContain("podmigrate_phase_duration_seconds_bucket{phase=\"dump\",le=\"0.5\"} 2");
        lines.ShouldContain("podmigrate_phase_duration_seconds_bucket{phase=\"dump\",le=\"300\"} 2");
        lines.ShouldContain("podmigrate_phase_duration_seconds_bucket{phase=\"dump\",le=\"+Inf\"} 3");
        lines.ShouldContain("podmigrate_phase_duration_seconds_count{phase=\"dump\"} 3");
        lines.ShouldContain("podmigrate_phase_duration_seconds_sum{phase=\"dump\"} 400.304");
    }

    [Fact]
    public void Observable_gauge_is_read_at_scrape_time_and_label_values_are_escaped()
    {
        using var meter = new Meter($"test.{Guid.NewGuid():N}");
        using var exporter = new PrometheusExporter(meter.Name);
        long free = 10;
        meter.CreateObservableGauge("podmigrate.share.free", () => new Measurement<long>(free, new KeyValuePair<string, object?>("path", "/a \"b\"\\c")), unit: "By");

        exporter.Scrape().ShouldContain("podmigrate_share_free_bytes{path=\"/a \\\"b\\\"\\\\c\"} 10\n");
        free = 7;
        var text = exporter.Scrape();
        text.ShouldContain("podmigrate_share_free_bytes{path=\"/a \\\"b\\\"\\\\c\"} 7\n");
        text.ShouldNotContain("} 10\n");
    }

    [Fact]
    public void Meters_that_were_not_named_are_not_exported()
    {
        using var mine = new Meter($"test.{Guid.NewGuid():N}");
        using var other = new Meter($"test.{Guid.NewGuid():N}");
        using var exporter = new PrometheusExporter(mine.Name);
        other.CreateCounter<long>("other.counter").Add(5);
        mine.CreateCounter<long>("mine.counter").Add(1);

        var text = exporter.Scrape();
        text.ShouldContain("mine_counter_total 1\n");
        text.ShouldNotContain("other_counter");
    }
}
