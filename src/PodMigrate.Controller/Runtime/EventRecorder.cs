using System.Globalization;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Runtime;

/// <summary>core/v1 Event types.</summary>
internal enum EventType
{
    Normal,
    Warning,
}

/// <summary>
/// Writes core/v1 Events about an object (what <c>kubectl describe</c> shows). An event identical to one recorded within
/// <see cref="EventRecorderOptions.AggregationWindow"/> (same object, type, reason, message and source) bumps that
/// Event's count and lastTimestamp instead of creating another object, as client-go's EventCorrelator does.
/// Recording never throws: a failure is logged and the event dropped (events are best effort, the reconcile is not).
/// The Event is the package's <see cref="Corev1Event"/>, written through its typed <c>CoreV1</c> calls (a create, then merge
/// patches of count and lastTimestamp): core/v1 is what <c>kubectl describe</c> lists and what the in-process API server serves.
/// </summary>
internal sealed class EventRecorder : IDisposable
{
    // What kubectl shows in full; longer messages are cut.
    private const int MaxMessageLength = 1024;

    private readonly ICoreV1Operations _events;
    private readonly EventRecorderOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // One write at a time: two identical events recorded together must end as one Event with count 2, not two Events.
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<AggregationKey, Recorded> _recorded = [];

    public EventRecorder(IKubernetesApi api, EventRecorderOptions options, TimeProvider time, ILogger<EventRecorder> logger)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        (_events, _options, _time, _logger) = (api.Kubernetes.CoreV1, options, time, logger);
    }

    public Task NormalAsync(V1ObjectReference involved, string reason, string message, CancellationToken cancellationToken)
        => RecordAsync(involved, EventType.Normal, reason, message, cancellationToken);

    public Task WarningAsync(V1ObjectReference involved, string reason, string message, CancellationToken cancellationToken)
        => RecordAsync(involved, EventType.Warning, reason, message, cancellationToken);

    /// <summary>
    /// Records an event on <paramref name="involved"/> (see <see cref="KubeObjects.Reference"/>); <paramref name="reason"/>
    /// is a short UpperCamelCase word (MigrationStarted, CheckpointFailed). Completes when the Event is written or dropped.
    /// </summary>
    public async Task RecordAsync(V1ObjectReference involved, EventType type, string reason, string message, CancellationToken cancellationToken)
    {
        var what = involved is null ? "(nothing)" : $"{involved.Kind} {involved.NamespaceProperty}/{involved.Name}";
        try
        {
            ArgumentNullException.ThrowIfNull(involved);
            ArgumentException.ThrowIfNullOrEmpty(involved.Kind);
            ArgumentException.ThrowIfNullOrEmpty(involved.Name);
            ArgumentException.ThrowIfNullOrEmpty(reason);
            message = message is null ? "" : message.Length <= MaxMessageLength ? message : message[..MaxMessageLength];
            await _gate.WaitAsync(cancellationToken);
            try
            {
                await WriteAsync(involved, type, reason, message, what, cancellationToken);
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The caller is stopping; the event goes with it.
        }
        catch (Exception e)
        {
            // The contract: recording an event never fails the caller. Whatever went wrong is logged with the event.
            RuntimeLog.EventDropped(_logger, e, reason ?? "", what, e.Message);
        }
    }

    public void Dispose() => _gate.Dispose();

    private async Task WriteAsync(V1ObjectReference involved, EventType type, string reason, string message, string what, CancellationToken cancellationToken)
    {
        // metav1.Time has whole seconds.
        var now = _time.GetUtcNow();
        now = new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
        var ns = string.IsNullOrEmpty(involved.NamespaceProperty) ? "default" : involved.NamespaceProperty;
        var key = new AggregationKey(involved.ApiVersion, involved.Kind!, ns, involved.Name!, involved.Uid, involved.FieldPath, type, reason, message);
        using var timeout = new CancellationTokenSource(_options.WriteTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        if (_recorded.TryGetValue(key, out var prior) && now - prior.LastTimestamp <= _options.AggregationWindow)
        {
            var count = prior.Count + 1;
            var patch = new JsonObject { ["count"] = count, ["lastTimestamp"] = Timestamp(now) }.ToJsonString();
            try
            {
                var patched = await KubeApiErrors.CallAsync(
                    token => _events.PatchNamespacedEventAsync(new V1Patch(patch, V1Patch.PatchType.MergePatch), prior.Name, ns, cancellationToken: token),
                    $"patch event {ns}/{prior.Name}", linked.Token);
                _recorded[key] = prior with { Count = patched.Count ?? count, LastTimestamp = now };
                RuntimeLog.EventRecorded(_logger, reason, what, prior.Name, patched.Count ?? count);
                return;
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                // The server dropped the Event (events have a TTL): start a new one.
                _recorded.Remove(key);
            }
        }
        var kubeEvent = new Corev1Event
        {
            ApiVersion = Corev1Event.KubeApiVersion,
            Kind = Corev1Event.KubeKind,
            Metadata = new V1ObjectMeta { GenerateName = involved.Name + ".", NamespaceProperty = ns },
            InvolvedObject = involved,
            Type = type.ToString(),
            Reason = reason,
            Message = message,
            Count = 1,
            FirstTimestamp = now.UtcDateTime,
            LastTimestamp = now.UtcDateTime,
            Source = new V1EventSource { Component = _options.Component, Host = _options.Host },
            ReportingComponent = _options.Component,
            ReportingInstance = _options.Host,
        };
        var created = await KubeApiErrors.CallAsync(token => _events.CreateNamespacedEventAsync(kubeEvent, ns, cancellationToken: token), $"create event in {ns}", linked.Token);
        var name = created.Metadata?.Name ?? throw new PodMigrateException(ErrorKind.Internal, "the API server created an Event without a name");
        if (_recorded.Count >= _options.MaxTracked)
        {
            _recorded.Remove(_recorded.MinBy(kv => kv.Value.LastTimestamp).Key);
        }
        _recorded[key] = new Recorded(name, 1, now);
        RuntimeLog.EventRecorded(_logger, reason, what, name, 1);
    }

    private static string Timestamp(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>client-go's event key: what makes two events "the same" (the involved object's resourceVersion does not).</summary>
    private readonly record struct AggregationKey(
        string? ApiVersion, string Kind, string Namespace, string Name, string? Uid, string? FieldPath, EventType Type, string Reason, string Message);

    private sealed record Recorded(string Name, int Count, DateTimeOffset LastTimestamp);
}

/// <summary>Who reports events and how they aggregate.</summary>
internal sealed class EventRecorderOptions
{
    /// <summary>source.component / reportingComponent, e.g. "podmigrate-controller".</summary>
    public required string Component { get; init; }

    /// <summary>source.host / reportingInstance: the pod or node that reports.</summary>
    public string? Host { get; init; }

    /// <summary>An identical event after a longer quiet time is a new Event object.</summary>
    public TimeSpan AggregationWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Deadline of one Event write.</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many distinct events are remembered for aggregation (the least recent are forgotten first).</summary>
    public int MaxTracked { get; init; } = 4096;

    public void Validate()
    {
        if (string.IsNullOrEmpty(Component))
        {
            throw PodMigrateException.InvalidArgument("the event recorder needs a component name");
        }
        if (AggregationWindow < TimeSpan.Zero || WriteTimeout <= TimeSpan.Zero || MaxTracked < 1)
        {
            throw PodMigrateException.InvalidArgument("event recorder: AggregationWindow must not be negative, WriteTimeout and MaxTracked must be positive");
        }
    }
}
