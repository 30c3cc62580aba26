using System.Diagnostics.Metrics;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Diagnostics;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent.Telemetry;

/// <summary>The agent's one Meter: phase durations, bytes moved, downtime, failures by kind.</summary>
internal sealed class AgentMetrics : IDisposable
{
    public const string MeterName = "PodMigrate.Agent";

    private readonly Meter _meter;
    private readonly Histogram<double> _phaseDuration;
    private readonly Histogram<double> _frozen;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _operations;
    private readonly Counter<long> _failures;
    private readonly UpDownCounter<long> _inFlight;

    public AgentMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _phaseDuration = _meter.CreateHistogram<double>("podmigrate.phase.duration", "s", "Time spent in each phase of checkpoints and restores");
        _frozen = _meter.CreateHistogram<double>("podmigrate.checkpoint.frozen", "s", "How long checkpointed workloads could not run");
        _bytes = _meter.CreateCounter<long>("podmigrate.bytes", "By", "Bytes of checkpoints: raw (CRIU images) and archive (compressed)");
        _operations = _meter.CreateCounter<long>("podmigrate.operations", description: "Finished operations by kind and outcome");
        _failures = _meter.CreateCounter<long>("podmigrate.failures", description: "Failed operations by kind of error");
        _inFlight = _meter.CreateUpDownCounter<long>("podmigrate.operations.in_flight", description: "Operations running now");
        // The agent's own resident memory by kind (the GC's figures are the runtime's System.Runtime meter, exported beside).
        _meter.CreateObservableGauge("podmigrate.agent.memory.resident", ResidentMemory, "By", "The agent's resident memory: anon (GC heap, malloc arenas, stacks), file (mapped runtime and assemblies), shmem (JIT code under W^X)");
    }

    public IDisposable Track(string operation)
    {
        var tag = new KeyValuePair<string, object?>("operation", operation);
        _inFlight.Add(1, tag);
        return new Decrement(_inFlight, tag);
    }

    public void Phase(string operation, Phase phase, TimeSpan duration)
        => _phaseDuration.Record(duration.TotalSeconds, new("operation", operation), new("phase", PhaseName(phase)));

    public void Frozen(TimeSpan duration) => _frozen.Record(duration.TotalSeconds);

    public void Bytes(string kind, long bytes) => _bytes.Add(bytes, new KeyValuePair<string, object?>("kind", kind));

    public void Succeeded(string operation) => _operations.Add(1, new("operation", operation), new("outcome", "success"));

    public void Failed(string operation, ErrorKind kind)
    {
        _operations.Add(1, new("operation", operation), new("outcome", "failure"));
        _failures.Add(1, new("operation", operation), new("kind", kind.ToString()));
    }

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> ResidentMemory()
    {
        if (ProcessMemory.Read(Environment.ProcessId) is not { } memory)
        {
            return [];
        }
        return
        [
            new(memory.AnonKiB * 1024, new KeyValuePair<string, object?>("kind", "anon")),
            new(memory.FileKiB * 1024, new KeyValuePair<string, object?>("kind", "file")),
            new(memory.ShmemKiB * 1024, new KeyValuePair<string, object?>("kind", "shmem")),
        ];
    }

    public static string PhaseName(Phase phase) => phase.ToString().ToLowerInvariant();

    private sealed class Decrement(UpDownCounter<long> counter, KeyValuePair<string, object?> tag) : IDisposable
    {
        public void Dispose() => counter.Add(-1, tag);
    }
}
