using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace PodMigrate.Core.Metrics;

/// <summary>
/// Collects the instruments of the named meters (System.Diagnostics.Metrics) and renders them in the Prometheus
/// text exposition format 0.0.4: counters as <c>_total</c>, histograms as cumulative <c>_bucket</c>/<c>_sum</c>/<c>_count</c>,
/// gauges and up-down counters as gauges. Observable instruments are read at scrape time.
/// </summary>
public sealed class PrometheusExporter : IDisposable
{
    private static readonly double[] DefaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, InstrumentState> _instruments = new();
    private readonly HashSet<string> _meterNames;
    private readonly Lock _scrapeLock = new();

    public PrometheusExporter(params string[] meterNames)
    {
        _meterNames = new HashSet<string>(meterNames, StringComparer.Ordinal);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (_meterNames.Contains(instrument.Meter.Name))
            {
                _instruments.TryAdd(instrument, InstrumentState.For(instrument));
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The current values of every instrument, in the Prometheus text format.</summary>
    public string Scrape()
    {
        lock (_scrapeLock)
        {
            foreach (var state in _instruments.Values)
            {
                state.BeginScrape();
            }
            _listener.RecordObservableInstruments();
            var text = new StringBuilder();
            foreach (var (instrument, state) in _instruments.OrderBy(p => p.Key.Name, StringComparer.Ordinal))
            {
                state.Render(MetricName(instrument), instrument.Description, text);
            }
            return text.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_instruments.TryGetValue(instrument, out var state))
        {
            state.Record(value, LabelSet.From(tags));
        }
    }

    /// <summary>"podmigrate.checkpoint.duration" with unit "s" -> "podmigrate_checkpoint_duration_seconds".</summary>
    internal static string MetricName(Instrument instrument)
    {
        var name = Sanitize(instrument.Name);
        var unit = instrument.Unit switch
        {
            "s" => "seconds",
            "By" => "bytes",
            "ms" => "milliseconds",
            null or "" or "1" => null,
            var u when u.StartsWith('{') => null,
            var u => Sanitize(u),
        };
        return unit is null || name.EndsWith("_" + unit, StringComparison.Ordinal) ? name : $"{name}_{unit}";
    }

    private static string Sanitize(string name)
    {
        var chars = name.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!(char.IsAsciiLetterOrDigit(chars[i]) || chars[i] == '_' || chars[i] == ':'))
            {
                chars[i] = '_';
            }
        }
        return char.IsAsciiDigit(chars[0]) ? "_" + new string(chars) : new string(chars);
    }

    private static string FormatValue(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>A sorted, rendered label set: the key of one time series.</summary>
    private readonly record struct LabelSet(string Rendered)
    {
        public static LabelSet From(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (tags.IsEmpty)
            {
                return new LabelSet("");
            }
            var pairs = new List<KeyValuePair<string, string>>(tags.Length);
            foreach (var tag in tags)
            {
                pairs.Add(new(Sanitize(tag.Key), Convert.ToString(tag.Value, CultureInfo.InvariantCulture) ?? ""));
            }
            pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            return new LabelSet(string.Join(",", pairs.Select(p => $"{p.Key}=\"{Escape(p.Value)}\"")));
        }

        public string With(string extra) => Rendered.Length == 0 ? $"{{{extra}}}" : $"{{{Rendered},{extra}}}";

        public override string ToString() => Rendered.Length == 0 ? "" : $"{{{Rendered}}}";

        private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
    }

    private abstract class InstrumentState
    {
        public static InstrumentState For(Instrument instrument) => instrument switch
        {
            Histogram<double> or Histogram<long> or Histogram<int> => new HistogramState(DefaultBuckets),
            Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double>
                => new SumState("counter", resetOnScrape: instrument.IsObservable),
            UpDownCounter<long> or UpDownCounter<int> or UpDownCounter<double> => new SumState("gauge", resetOnScrape: false),
            _ => new LastValueState(),
        };

        public abstract void Record(double value, LabelSet labels);

        /// <summary>Observable instruments report absolute values at each scrape: forget the previous ones first.</summary>
        public virtual void BeginScrape()
        {
        }

        public abstract void Render(string name, string? help, StringBuilder text);

        protected static void Header(string name, string? help, string type, StringBuilder text)
        {
            if (!string.IsNullOrEmpty(help))
            {
                text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\n", " ", StringComparison.Ordinal)).Append('\n');
            }
            text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        }
    }

    private sealed class SumState(string type, bool resetOnScrape) : InstrumentState
    {
        private readonly ConcurrentDictionary<LabelSet, double> _values = new();

        public override void Record(double value, LabelSet labels) => _values.AddOrUpdate(labels, value, (_, old) => old + value);

        public override void BeginScrape()
        {
            if (resetOnScrape)
            {
                _values.Clear();
            }
        }

        public override void Render(string name, string? help, StringBuilder text)
        {
            var series = type == "counter" && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
            Header(series, help, type, text);
            foreach (var (labels, value) in _values.OrderBy(p => p.Key.Rendered, StringComparer.Ordinal))
            {
                text.Append(series).Append(labels.ToString()).Append(' ').Append(FormatValue(value)).Append('\n');
            }
        }
    }

    private sealed class LastValueState : InstrumentState
    {
        private readonly ConcurrentDictionary<LabelSet, double> _values = new();

        public override void Record(double value, LabelSet labels) => _values[labels] = value;

        public override void BeginScrape() => _values.Clear();

        public override void Render(string name, string? help, StringBuilder text)
        {
            Header(name, help, "gauge", text);
            foreach (var (labels, value) in _values.OrderBy(p => p.Key.Rendered, StringComparer.Ordinal))
            {
                text.Append(name).Append(labels.ToString()).Append(' ').Append(FormatValue(value)).Append('\n');
            }
        }
    }

    private sealed class HistogramState(double[] bounds) : InstrumentState
    {
        private readonly ConcurrentDictionary<LabelSet, Series> _series = new();

        public override void Record(double value, LabelSet labels) => _series.GetOrAdd(labels, _ => new Series(bounds.Length)).Add(bounds, value);

        public override void Render(string name, string? help, StringBuilder text)
        {
            Header(name, help, "histogram", text);
            foreach (var (labels, series) in _series.OrderBy(p => p.Key.Rendered, StringComparer.Ordinal))
            {
                var (counts, sum, count) = series.Snapshot();
                long cumulative = 0;
                for (var i = 0; i < bounds.Length; i++)
                {
                    cumulative += counts[i];
                    text.Append(name).Append("_bucket").Append(labels.With($"le=\"{FormatValue(bounds[i])}\"")).Append(' ').Append(cumulative).Append('\n');
                }
                text.Append(name).Append("_bucket").Append(labels.With("le=\"+Inf\"")).Append(' ').Append(count).Append('\n');
                text.Append(name).Append("_sum").Append(labels.ToString()).Append(' ').Append(FormatValue(sum)).Append('\n');
                text.Append(name).Append("_count").Append(labels.ToString()).Append(' ').Append(count).Append('\n');
            }
        }

        private sealed class Series(int buckets)
        {
            private readonly long[] _counts = new long[buckets];
            private readonly Lock _lock = new();
            private double _sum;
            private long _count;

            public void Add(double[] bounds, double value)
            {
                var index = Array.BinarySearch(bounds, value);
                if (index < 0)
                {
                    index = ~index;
                }
                lock (_lock)
                {
                    if (index < _counts.Length)
                    {
                        _counts[index]++;
                    }
                    _sum += value;
                    _count++;
                }
            }

            public (long[] Counts, double Sum, long Count) Snapshot()
            {
                lock (_lock)
                {
                    return ((long[])_counts.Clone(), _sum, _count);
                }
            }
        }
    }
}
