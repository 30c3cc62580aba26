using k8s;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Retry;
using PodMigrate.Kube.Client;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Mirror;
using PodMigrate.NodeEmulator.Nodes;
using PodMigrate.NodeEmulator.Pods;
using PodMigrate.NodeEmulator.Probes;

namespace PodMigrate.NodeEmulator;

/// <summary>
/// Plays kubelet for one node, between an API server and the node's real CRI (containerd): registers the Node and keeps
/// its Lease and status fresh, runs the pods bound to the node through CRI and reports their status, carries out their
/// deletion, cleans up sandboxes it left behind, and optionally publishes the node agent's mirror pod.
/// Host it in-process with <see cref="RunAsync"/>, or as `podmigrate node emulate`.
/// </summary>
public sealed class NodeEmulator
{
    private static readonly TimeSpan RetryInitial = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan RetryMax = TimeSpan.FromSeconds(30);

    private readonly IKubernetesApi _api;
    private readonly CriConnection _cri;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;

    /// <param name="api">The API server; the emulator does not dispose it.</param>
    /// <param name="cri">The node's CRI endpoint; the emulator does not dispose it.</param>
    public NodeEmulator(IKubernetesApi api, CriConnection cri, NodeEmulatorOptions options, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(cri);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _api = api;
        _cri = cri;
        Options = options;
        _loggerFactory = loggerFactory;
        _time = time ?? TimeProvider.System;
    }

    public NodeEmulatorOptions Options { get; }

    /// <summary>
    /// Runs until <paramref name="cancellationToken"/> is cancelled, then returns: like a stopped kubelet it leaves the
    /// pods running and the Node as it is (its Lease simply stops being renewed). Invalid options are InvalidArgument;
    /// an API server or runtime that does not answer yet is waited for.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var validation = new NodeEmulatorOptionsValidator().Validate(null, Options);
        if (validation.Failed)
        {
            throw PodMigrateException.InvalidArgument($"node emulator options: {validation.FailureMessage}");
        }
        var logger = _loggerFactory.CreateLogger<NodeEmulator>();
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["Node"] = Options.NodeName });
        try
        {
            await RunCoreAsync(logger, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped as asked.
        }
        EmulatorLog.Stopped(logger, Options.NodeName);
    }

    private async Task RunCoreAsync(ILogger logger, CancellationToken cancellationToken)
    {
        EmulatorLog.Starting(logger, Options.NodeName, _cri.Target, Options.Address);
        var clusterId = await RetryAsync(logger, "read the cluster's id (namespace kube-system)", async ct =>
            (await KubeApiErrors.CallAsync(t => _api.Kubernetes.CoreV1.ReadNamespaceAsync(EmulatorLabels.ClusterIdNamespace, cancellationToken: t), $"get namespace {EmulatorLabels.ClusterIdNamespace}", ct)).Metadata.Uid
                ?? throw PodMigrateException.FailedPrecondition("namespace kube-system has no uid"), cancellationToken);
        var runtimeName = await RetryAsync(logger, $"ask the runtime at {_cri.Target} for its version", async ct =>
            (await _cri.Runtime.VersionAsync(ct)).RuntimeName, cancellationToken);

        if (Options.NodeMemoryBytes is { } memory)
        {
            NodeMemoryCgroup.Apply(Options.CgroupRoot, memory);
            EmulatorLog.NodeMemoryEnforced(logger, Options.NodeName, memory, Options.CgroupRoot);
        }
        using var prober = new Prober(_cri);
        var node = new NodeLifecycle(_api, _cri, Options, _time, logger);
        await node.RegisterAsync(cancellationToken);

        var runner = new KubeletPodRunner(_cri, _loggerFactory.CreateLogger<KubeletPodRunner>(), _time, new KubeletPodRunnerOptions { CleanupTimeout = Options.CleanupTimeout, CgroupRoot = Options.CgroupRoot });
        var context = new PodWorkerContext(_api, _cri, runner, prober, Options, _time, logger, clusterId, runtimeName);
        await using var workers = new PodWorkers(context);
        var source = new PodSource(_api, workers, Options, _time, logger);
        var mirror = Options.AgentPort is null ? null : new AgentMirrorPod(_api, prober, Options, () => node.NodeUid, _time, logger);
        if (mirror is not null)
        {
            workers.MirrorPodChanged = mirror.Wake;
        }

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var loops = new List<Task>
        {
            node.RunLeaseAsync(stopping.Token),
            node.RunStatusAsync(stopping.Token),
            source.RunAsync(stopping.Token),
            workers.RunHousekeepingAsync(source.Synced, stopping.Token),
        };
        if (mirror is not null)
        {
            loops.Add(mirror.RunAsync(stopping.Token));
        }
        EmulatorLog.Started(logger, Options.NodeName, clusterId);
        // The loops end only when cancelled; one that ends otherwise has failed: stop the rest and surface its error.
        await Task.WhenAny(loops);
        await stopping.CancelAsync();
        await Task.WhenAll(loops);
    }

    /// <summary>Retries what fails because the other side is not there yet; a configuration error fails at once.</summary>
    private async Task<T> RetryAsync<T>(ILogger logger, string doing, Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        var delay = RetryInitial;
        while (true)
        {
            try
            {
                return await action(cancellationToken);
            }
            catch (PodMigrateException e) when (e.Kind is ErrorKind.Unavailable or ErrorKind.DeadlineExceeded or ErrorKind.Internal)
            {
                EmulatorLog.Waiting(logger, doing, delay, e.Message);
            }
            await Task.Delay(delay, _time, cancellationToken);
            delay = ExponentialBackoff.Doubled(delay, RetryMax);
        }
    }
}
