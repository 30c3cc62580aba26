using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using PodMigrate.Controller.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Tests.Runtime;

/// <summary>A fresh in-process API server on a free loopback port and a client of it over real HTTP, under the test's deadline.</summary>
internal sealed class ApiServerFixture : IAsyncDisposable
{
    public static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);

    private readonly CancellationTokenSource _timeout;

    private ApiServerFixture(KubeApiServer server, KubernetesApiClient client, CancellationTokenSource timeout)
    {
        Server = server;
        Client = client;
        _timeout = timeout;
    }

    public KubeApiServer Server { get; }

    public KubernetesApiClient Client { get; }

    public CancellationToken Token => _timeout.Token;

    public static async Task<ApiServerFixture> StartAsync(ApiServerOptions? options = null)
    {
        var timeout = new CancellationTokenSource(TestTimeout);
        var server = await KubeApiServer.StartAsync(options ?? new ApiServerOptions(), configureLogging: null, timeout.Token);
        return new ApiServerFixture(server, new KubernetesApiClient(server.ClientConfig), timeout);
    }

    /// <summary>Another client of the server with <paramref name="handlers"/> in its HTTP pipeline (a <see cref="Wire"/>); the caller disposes it.</summary>
    public KubernetesApiClient ClientWith(params DelegatingHandler[] handlers) => new(Server.ClientConfig, handlers);

    /// <summary>The Lease as the server holds it, read with the package's typed call.</summary>
    public Task<V1Lease> LeaseAsync(string ns = "default", string name = "podmigrate-controller")
        => Client.Kubernetes.CoordinationV1.ReadNamespacedLeaseAsync(name, ns, cancellationToken: Token);

    /// <summary>The core/v1 Events of <paramref name="ns"/> (all namespaces when null), read with the package's typed calls.</summary>
    public async Task<IList<Corev1Event>> EventsAsync(string? ns)
        => (ns is null
            ? await Client.Kubernetes.CoreV1.ListEventForAllNamespacesAsync(cancellationToken: Token)
            : await Client.Kubernetes.CoreV1.ListNamespacedEventAsync(ns, cancellationToken: Token)).Items;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        _timeout.Dispose();
    }
}

/// <summary>
/// A hand on the wire of the package's client (a handler in its HTTP pipeline): every request hangs while partitioned,
/// and a PUT's answer can be lost after the server applied it. What it forwards goes over HTTP to the real server.
/// </summary>
internal sealed class Wire : DelegatingHandler
{
    private readonly TaskCompletionSource _putAnswerLost = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _partitioned;
    private int _loseNextPutAnswer;

    public bool Partitioned
    {
        get => _partitioned;
        set => _partitioned = value;
    }

    /// <summary>The next PUT is applied by the server but its answer is lost: the call hangs until it is cancelled.</summary>
    public void LoseNextPutAnswer() => Interlocked.Exchange(ref _loseNextPutAnswer, 1);

    /// <summary>Completes when a PUT was applied and its answer lost.</summary>
    public Task PutAnswerLost => _putAnswerLost.Task;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (_partitioned)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        if (request.Method != HttpMethod.Put || Interlocked.Exchange(ref _loseNextPutAnswer, 0) == 0)
        {
            return await base.SendAsync(request, cancellationToken);
        }
        // The server applies the write; its answer never arrives, and the caller sees only its own cancellation.
        using (await base.SendAsync(request, CancellationToken.None))
        {
        }
        _putAnswerLost.TrySetResult();
        await Task.Delay(Timeout.Infinite, cancellationToken);
        throw new UnreachableException();
    }
}

/// <summary>
/// The real client with a hand on its generic calls: cut and hold watches, fail lists, and count what was asked. What it
/// forwards goes over HTTP to the real server.
/// </summary>
internal sealed class ControlledApi(IKubernetesApi inner) : IKubernetesApi, IDisposable
{
    private readonly Lock _gate = new();
    private readonly ConcurrentQueue<string?> _watchVersions = new();
    private CancellationTokenSource _cut = new();
    private TaskCompletionSource? _held;
    private TaskCompletionSource _watchWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _listCalls;
    private int _getCalls;
    private int _listFailures;
    private int _gone;

    /// <summary>The package's typed calls go straight through: put a <see cref="Wire"/> in the inner client's pipeline to reach them.</summary>
    public k8s.IKubernetes Kubernetes => inner.Kubernetes;

    public int ListCalls => Volatile.Read(ref _listCalls);

    public int GetCalls => Volatile.Read(ref _getCalls);

    public int GoneCount => Volatile.Read(ref _gone);

    /// <summary>The resourceVersion each watch asked to start from, in order.</summary>
    public IReadOnlyList<string?> WatchVersions => [.. _watchVersions];

    /// <summary>The next <paramref name="count"/> lists fail with Unavailable.</summary>
    public void FailLists(int count) => Interlocked.Exchange(ref _listFailures, count);

    /// <summary>Ends the watches in progress (as a server timeout would) and holds every new one until <see cref="ReleaseWatches"/>.</summary>
    public void CutAndHoldWatches()
    {
        CancellationTokenSource cut;
        lock (_gate)
        {
            _held ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cut = _cut;
            _cut = new CancellationTokenSource();
        }
        cut.Cancel();
    }

    /// <summary>Completes when a watch is waiting at the hold (the informer has seen the old one end).</summary>
    public Task WatchWaitingAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _watchWaiting.Task.WaitAsync(cancellationToken);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _cut.Dispose();
        }
    }

    public void ReleaseWatches()
    {
        TaskCompletionSource? held;
        lock (_gate)
        {
            held = _held;
            _held = null;
            _watchWaiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        held?.TrySetResult();
    }

    public async Task<T> GetAsync<T>(ResourceKind<T> kind, string? ns, string name, CancellationToken cancellationToken)
        where T : class
    {
        Interlocked.Increment(ref _getCalls);
        return await inner.GetAsync(kind, ns, name, cancellationToken);
    }

    public async Task<KubeList<T>> ListAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        Interlocked.Increment(ref _listCalls);
        if (Interlocked.Decrement(ref _listFailures) >= 0)
        {
            throw PodMigrateException.Unavailable($"list {kind}: injected failure");
        }
        Interlocked.Exchange(ref _listFailures, 0);
        return await inner.ListAsync(kind, ns, options, cancellationToken);
    }

    public async Task<T> CreateAsync<T>(ResourceKind<T> kind, string? ns, T value, CancellationToken cancellationToken)
        where T : class
    {
        return await inner.CreateAsync(kind, ns, value, cancellationToken);
    }

    public async Task BindAsync(string ns, string podName, string nodeName, CancellationToken cancellationToken)
    {
        await inner.BindAsync(ns, podName, nodeName, cancellationToken);
    }

    public async Task<T> ReplaceAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
    {
        return await inner.ReplaceAsync(kind, ns, name, value, cancellationToken);
    }

    public async Task<T> ReplaceStatusAsync<T>(ResourceKind<T> kind, string? ns, string name, T value, CancellationToken cancellationToken)
        where T : class
    {
        return await inner.ReplaceStatusAsync(kind, ns, name, value, cancellationToken);
    }

    public async Task<T> PatchAsync<T>(ResourceKind<T> kind, string? ns, string name, PatchType type, string patch, bool status, CancellationToken cancellationToken)
        where T : class
    {
        return await inner.PatchAsync(kind, ns, name, type, patch, status, cancellationToken);
    }

    public async Task<T?> DeleteAsync<T>(ResourceKind<T> kind, string? ns, string name, DeleteOptions? options, CancellationToken cancellationToken)
        where T : class
    {
        return await inner.DeleteAsync(kind, ns, name, options, cancellationToken);
    }

    public async IAsyncEnumerable<WatchEvent<T>> WatchAsync<T>(ResourceKind<T> kind, string? ns, ListOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
        where T : class
    {
        Task? held;
        lock (_gate)
        {
            held = _held?.Task;
            if (held is not null)
            {
                _watchWaiting.TrySetResult();
            }
        }
        if (held is not null)
        {
            await held.WaitAsync(cancellationToken);
        }
        _watchVersions.Enqueue(options?.ResourceVersion);
        CancellationToken cut;
        lock (_gate)
        {
            cut = _cut.Token;
        }
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, cut);
        await using var events = inner.WatchAsync(kind, ns, options, linked.Token).GetAsyncEnumerator(linked.Token);
        while (true)
        {
            try
            {
                if (!await events.MoveNextAsync())
                {
                    yield break;
                }
            }
            catch (OperationCanceledException) when (cut.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                // Cut by the test: the stream ends the way a server's timeoutSeconds ends it.
                yield break;
            }
            catch (PodMigrateException e) when (e.IsGone())
            {
                Interlocked.Increment(ref _gone);
                throw;
            }
            yield return events.Current;
        }
    }
}

/// <summary>What an informer delivered, in order, with a way to wait for a condition on it.</summary>
internal sealed class DeliveryLog<T>
    where T : class
{
    private readonly Lock _gate = new();
    private readonly List<(string Kind, string Key, T? Old, T Current)> _entries = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DeliveryLog(Func<T, string> keyOf)
    {
        Handler = new InformerHandler<T>(
            o => Record("add", keyOf(o), null, o),
            (old, current) => Record("update", keyOf(current), old, current),
            o => Record("delete", keyOf(o), null, o));
    }

    public InformerHandler<T> Handler { get; }

    public IReadOnlyList<(string Kind, string Key, T? Old, T Current)> Entries
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>"add a", "update a", "delete b", … in order.</summary>
    public IReadOnlyList<string> Lines => [.. Entries.Select(e => $"{e.Kind} {e.Key}")];

    public void Record(string kind, string key, T? old, T current)
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            _entries.Add((kind, key, old, current));
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
    }

    public async Task WaitForAsync(Func<IReadOnlyList<string>, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                changed = _changed.Task;
            }
            if (condition(Lines))
            {
                return;
            }
            await changed.WaitAsync(cancellationToken);
        }
    }
}

/// <summary>Logs kept in memory, so that a test can assert what was logged (and with which key).</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(LogLevel Level, EventId Id, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(LogLevel Level, EventId Id, string Message, Exception? Exception)> Entries => [.. _entries];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        => _entries.Enqueue((logLevel, eventId, formatter(state, exception), exception));
}

internal static class TestPods
{
    public static V1Pod Pod(string name, Dictionary<string, string>? labels = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "localhost:5000/podmigrate/counter:1" }] },
    };

    /// <summary>Polls (every 10 ms of real time) until the condition holds or the token ends the test.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, CancellationToken cancellationToken)
    {
        while (!condition())
        {
            await Task.Delay(10, cancellationToken);
        }
    }
}

/// <summary>A loop the test started (informer, elector, runner): disposing cancels it and waits, bounded, for it to return.</summary>
internal sealed class Background : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;

    private Background(Func<CancellationToken, Task> run, CancellationToken testToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(testToken);
        Task = Task.Run(() => run(_stop.Token), CancellationToken.None);
    }

    public Task Task { get; }

    public static Background Start(Func<CancellationToken, Task> run, CancellationToken testToken) => new(run, testToken);

    /// <summary>Cancels and waits; the loop's own exception (not its cancellation) surfaces here.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WaitAsync(TimeSpan.FromSeconds(20));
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }
}

/// <summary>The repository's own PodMigration CRD (its schema and defaults are part of what is tested), installed in an API server.</summary>
internal static class PodMigrationCrd
{
    public static async Task InstallAsync(IKubernetesApi api, CancellationToken cancellationToken)
    {
        var crd = KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(Path(), cancellationToken), "deploy/10-podmigration-crd.yaml").Single();
        await api.CreateAsync(KubeResources.CustomResourceDefinitions, null,
            KubeJson.Deserialize(System.Text.Encoding.UTF8.GetString(crd), KubeClientJsonContext.Default.CustomResource, "crd"), cancellationToken);
    }

    private static string Path()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(directory.FullName, "PodMigrate.sln")))
            {
                return System.IO.Path.Combine(directory.FullName, "deploy", "10-podmigration-crd.yaml");
            }
        }
        throw new FileNotFoundException($"no PodMigrate.sln above {AppContext.BaseDirectory}: this test reads deploy/10-podmigration-crd.yaml");
    }
}
