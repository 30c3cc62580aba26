using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Telemetry;
using PodMigrate.Controller.Triggers.OomGuard;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller;

/// <summary>
/// The PodMigrate controller: informers on PodMigrations and Pods feed two work queues — migrations (the state machine
/// in <see cref="PodMigrationReconciler"/>) and clone-of pods (<see cref="CloneOfReconciler"/>) — whose workers run only
/// while this replica holds the Lease. A change to a clone pod wakes its migration, so verification reacts at once.
/// </summary>
public sealed class PodMigrateController : IDisposable
{
    public const string MeterName = ControllerMetrics.MeterName;

    /// <summary>The Events' source component of the OOM guard.</summary>
    public const string OomGuardComponent = "podmigrate-oom-guard";

    private readonly ControllerHost _host;
    private readonly IAgentDirectory _agents;
    private readonly OperationWakeups _wakeups;

    private PodMigrateController(ControllerHost host, IAgentDirectory agents, OperationWakeups wakeups, IKubernetesApi api, ControllerOptions options)
    {
        _host = host;
        _agents = agents;
        _wakeups = wakeups;
        Api = api;
        Settings = options;
    }

    /// <summary>What the health checks read (<see cref="Hosting.ControllerHosting"/>).</summary>
    internal IKubernetesApi Api { get; }

    internal ControllerOptions Settings { get; }

    internal IReadOnlyList<IInformer> Informers => _host.Informers;

    internal LeaderElector? Elector => _host.Elector;

    /// <summary>
    /// The controller, reaching agents as <paramref name="agentConnection"/> says (their DaemonSet pods and mutual TLS,
    /// or a static map), validated here so that a bad configuration fails at start.
    /// </summary>
    public static PodMigrateController Create(IKubernetesApi api, AgentConnectionOptions agentConnection, ControllerOptions options, ILoggerFactory loggers, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(agentConnection);
        ArgumentNullException.ThrowIfNull(loggers);
        if (new AgentConnectionOptionsValidator().Validate(null, agentConnection) is { Failed: true } invalid)
        {
            throw PodMigrateException.InvalidArgument($"agent connection: {invalid.FailureMessage}");
        }
        time ??= TimeProvider.System;
        return Create(api, AgentDirectories.Create(Options.Create(agentConnection), api, time, loggers), options, loggers, time);
    }

    internal static PodMigrateController Create(IKubernetesApi api, IAgentDirectory agents, ControllerOptions options, ILoggerFactory loggers, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(agents);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        time ??= TimeProvider.System;
        if (options.OomGuard?.Validate().ToList() is { Count: > 0 } guardProblems)
        {
            throw PodMigrateException.InvalidArgument($"OOM guard: {string.Join("; ", guardProblems)}");
        }

        var migrations = new Informer<PodMigration>(api, PodMigration.Resource,
            new InformerOptions<PodMigration> { Namespace = options.WatchNamespace }, time, loggers.CreateLogger<Informer<PodMigration>>());
        var pods = new Informer<V1Pod>(api, KubeResources.V1Pods,
            new InformerOptions<V1Pod> { Namespace = options.WatchNamespace }, time, loggers.CreateLogger<Informer<V1Pod>>());

        var events = new MigrationEvents(new EventRecorder(api, new EventRecorderOptions { Component = MigrationEvents.Component, Host = options.Identity }, time,
            loggers.CreateLogger<EventRecorder>()));
        // Reconcilers read what they reconcile from the informers' caches; SeenVersions keeps a migration's cached copy from
        // being older than what the reconciler itself last read or wrote of it.
        var seen = new SeenVersions();
        // Source and clone pods are read from the pod informer too (CacheFirstReader): a reconcile of an unchanged world is no GET.
        // A migration waiting on an agent's operation is queued the moment it ends (the pause runs through that wait).
        var migrationQueue = new WorkQueue<ObjectKey>(null, time);
        var wakeups = new OperationWakeups(migrationQueue.Add, loggers.CreateLogger<OperationWakeups>());
        var migrationReconciler = new PodMigrationReconciler(seen.Track(api, PodMigration.Resource), agents, events, options, time,
            loggers.CreateLogger<PodMigrationReconciler>(), pods, wakeups);
        var migrationRunner = new ReconcileRunner("podmigrations", new MigrationAdapter(migrationReconciler, migrations, seen),
            migrationQueue, options.Workers, loggers.CreateLogger<ReconcileRunner>());
        var cloneOfRunner = new ReconcileRunner("clone-of-pods", new CloneOfAdapter(new CloneOfReconciler(api), pods),
            new WorkQueue<ObjectKey>(null, time), 1, loggers.CreateLogger<ReconcileRunner>());

        migrations.AddHandler(new InformerHandler<PodMigration>(
            m => migrationRunner.Queue.Add(ObjectKey.Of(m.Metadata)),
            (_, m) => migrationRunner.Queue.Add(ObjectKey.Of(m.Metadata)),
            m =>
            {
                seen.Forget(ObjectKey.Of(m.Metadata));
                migrationRunner.Queue.Add(ObjectKey.Of(m.Metadata));
            }));
        pods.AddHandler(InformerHandler<V1Pod>.OnAnyChange(pod =>
        {
            if (pod.Metadata.Annotations.ValueAt(MigrationAnnotations.Migration) is { Length: > 0 } migration)
            {
                migrationRunner.Queue.Add(new ObjectKey(pod.Metadata.NamespaceProperty, migration));
            }
            if (CloneOfReconciler.IsCloneOfRequest(pod))
            {
                cloneOfRunner.Queue.Add(ObjectKey.Of(pod.Metadata));
            }
        }));

        LeaderElector? elector = null;
        if (options.LeaderElect)
        {
            elector = new LeaderElector(api, new LeaderElectionOptions
            {
                Namespace = options.LeaseNamespace,
                LeaseName = options.LeaseName,
                Identity = options.Identity,
                LeaseDuration = options.LeaseDuration,
                RenewDeadline = options.LeaseRenewDeadline,
                RetryPeriod = options.LeaseRetryPeriod,
                ReleaseOnCancel = options.ReleaseLeaseOnStop,
            }, time, loggers.CreateLogger<LeaderElector>());
        }
        var leaderLoops = new List<Func<CancellationToken, Task>>();
        if (options.OomGuard is { } guard)
        {
            var guardEvents = new EventRecorder(api, new EventRecorderOptions { Component = OomGuardComponent, Host = options.Identity }, time, loggers.CreateLogger<EventRecorder>());
            leaderLoops.Add(ct => new OomGuardLoop(api, agents, pods, migrations, guardEvents, guard, time, loggers.CreateLogger<OomGuardLoop>()).RunAsync(ct));
        }
        return new PodMigrateController(new ControllerHost([migrations, pods], [migrationRunner, cloneOfRunner], elector, loggers.CreateLogger<ControllerHost>(), leaderLoops), agents, wakeups, api, options);
    }

    /// <summary>Runs until cancelled (a SIGTERM); with leader election, reconciles only while leading.</summary>
    public Task RunAsync(CancellationToken cancellationToken) => _host.RunAsync(cancellationToken);

    public void Dispose()
    {
        _wakeups.Dispose();
        (_agents as IDisposable)?.Dispose();
    }

    private sealed class MigrationAdapter(PodMigrationReconciler reconciler, Informer<PodMigration> cache, SeenVersions seen) : IReconciler
    {
        public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken cancellationToken)
        {
            // Not cached: deleted (the GET says NotFound) or not listed yet. Cached but older than what we saw: read the server.
            var after = cache.GetCopy(key) is { } cached && seen.IsCurrent(key, cached.Metadata.ResourceVersion)
                ? await reconciler.ReconcileAsync(cached, cancellationToken)
                : await reconciler.ReconcileAsync(key.Namespace ?? "default", key.Name, cancellationToken);
            return after is { } delay ? ReconcileResult.After(delay) : ReconcileResult.Done;
        }
    }

    private sealed class CloneOfAdapter(CloneOfReconciler reconciler, Informer<V1Pod> cache) : IReconciler
    {
        public async Task<ReconcileResult> ReconcileAsync(ObjectKey key, CancellationToken cancellationToken)
        {
            // Gone from the cache: the pod was deleted, there is nothing to clone into.
            if (cache.Get(key) is { } pod)
            {
                await reconciler.ReconcileAsync(pod, cancellationToken);
            }
            return ReconcileResult.Done;
        }
    }
}
