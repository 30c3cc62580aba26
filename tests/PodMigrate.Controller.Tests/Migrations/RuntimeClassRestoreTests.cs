using System.Collections.Concurrent;
using System.Net;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using k8s.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Agents;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Runtime;
using PodMigrate.Controller.Tests.Runtime;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;
using PodMigrate.Runtime.Contract;
using PodMigrate.TestKit.Agent;

namespace PodMigrate.Controller.Tests.Migrations;

/// <summary>
/// The reconciler's RuntimeClass path (issue 9, items 2, 5 and 7) against the in-process API server and fake agents on
/// the real gRPC layer: the target prepares before the clone exists, the clone runs the source's image under the
/// podmigrate RuntimeClass with the restore annotations, downtime runs from the source's freeze to the runtime's
/// restore record, the staging is released after success and on rollback, and a target without the handler is refused.
/// </summary>
public sealed class RuntimeClassRestoreTests
{
    // Whole microseconds: the status keeps times as the package's JSON writes them (six fractional digits, as a MicroTime).
    private static readonly DateTimeOffset FrozenAt = new(DateTimeOffset.UtcNow.AddMinutes(-1).UtcTicks / 10 * 10, TimeSpan.Zero);
    private static readonly DateTimeOffset RestoredAt = FrozenAt.AddMilliseconds(1234);

    [Fact]
    public async Task Migrate_prepares_on_the_target_first_then_runs_the_clone_under_the_runtime_class_and_reports_freeze_to_restore()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        world.Target.Calls.ShouldContain("PrepareRestore");
        world.Target.CloneExistedAtPrepare.ShouldBe(false);
        world.Target.Calls.ShouldNotContain("Restore");
        world.Target.PreparedFor.ShouldBe($"default/{migration.Status.ClonePod}/counter");
        // Beside the checkpoint, following the archive as it is written; once that got there, the restore step does not
        // prepare again. No image pull: the source's node reported no digest, and a tag could have moved since.
        world.Target.Prepares.ToArray().ShouldBe(new[] { (true, "") });
        migration.Status.SourceImage.ShouldBe("localhost:5000/podmigrate/counter:1");
        migration.Status.PreparedAt.ShouldNotBeNull();
        world.Target.Calls.ShouldContain("ReleasePrepared");
        world.Source.Calls.ShouldContain("Discard");
        // The release names this migration's checkpoint: a hold of another migration is not this one's to end.
        world.Source.ReleasedFor.ShouldBe(new[] { migration.Status.CheckpointId.ShouldNotBeNull() });
        migration.Status.PreparedOn.ShouldBe("node-b");
        migration.Status.CheckpointImage.ShouldBeNull();
        migration.Status.SourceStoppedAt.ShouldBe(FrozenAt);
        migration.Status.RestoredAt.ShouldBe(RestoredAt);
        migration.Status.Downtime.ShouldBe("1.234s");

        var clone = world.LastClone.ShouldNotBeNull();
        clone.Spec.RuntimeClassName.ShouldBe("podmigrate");
        clone.Spec.NodeName.ShouldBe("node-b");
        clone.Spec.Containers[0].Image.ShouldBe("localhost:5000/podmigrate/counter:1");
        clone.Metadata.Annotations![RestoreAnnotations.Checkpoint].ShouldBe(migration.Status.CheckpointId);
        clone.Metadata.Annotations[RestoreAnnotations.Container].ShouldBe("counter");
    }

    [Fact]
    public async Task The_clone_runs_the_source_image_by_the_digest_its_node_reported_and_the_target_pulls_it_while_it_prepares()
    {
        const string Pinned = "localhost:5000/podmigrate/counter@sha256:cb40f19159a96d53175ceab1ccc834334207f560c9a8e0ae6777969e349a45e2";
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true, sourceImageId: Pinned);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        migration.Status.SourceImage.ShouldBe(Pinned);
        // Pulled by the target beside the checkpoint: the kubelet finds the clone's image present.
        world.Target.Prepares.ToArray().ShouldBe(new[] { (true, Pinned) });
        var clone = world.LastClone.ShouldNotBeNull();
        clone.Spec.Containers[0].Image.ShouldBe(Pinned);
    }

    [Theory]
    [InlineData("docker-pullable://registry.example/app@sha256:cb40f19159a96d53175ceab1ccc834334207f560c9a8e0ae6777969e349a45e2", "registry.example/app@sha256:cb40f19159a96d53175ceab1ccc834334207f560c9a8e0ae6777969e349a45e2")]
    [InlineData("registry.example/app@sha256:cb40f19159a96d53175ceab1ccc834334207f560c9a8e0ae6777969e349a45e2", "registry.example/app@sha256:cb40f19159a96d53175ceab1ccc834334207f560c9a8e0ae6777969e349a45e2")]
    [InlineData("sha256:38fcd8da26bd34945ec9d1cf746ef96bbc11526b285d68d1cf8f0b447fe43d06", "registry.example/app:1")]
    [InlineData("registry.example/app@sha256:cb40", "registry.example/app:1")]
    [InlineData("registry.example/app@sha256:CB40F19159A96D53175CEAB1CCC834334207F560C9A8E0AE6777969E349A45E2", "registry.example/app:1")]
    [InlineData("", "registry.example/app:1")]
    public void The_pinned_image_is_a_repository_digest_or_else_the_spec_image(string imageId, string expected)
    {
        var source = PackageJson.FromNode<V1Pod>(System.Text.Json.Nodes.JsonNode.Parse($$$"""
            {"metadata":{"name":"app","namespace":"default"},"spec":{"containers":[{"name":"app","image":"registry.example/app:1"}]},
             "status":{"containerStatuses":[{"name":"app","image":"registry.example/app:1","imageID":"{{{imageId}}}"}]}}
            """)!, "source");
        ClonePods.PinnedImage(source, "app").ShouldBe(expected);
    }

    [Fact]
    public async Task A_field_of_the_source_pods_spec_unknown_to_the_packages_models_reaches_the_clone()
    {
        await using var world = await World.StartAsync(targetHasHandler: true);
        // A spec field newer than KubernetesClient 21.0.8's V1PodSpec, as a newer API server would serve it.
        await world.Client.PatchAsync(KubeResources.RawPods, "default", "counter", PatchType.MergePatch,
            """{"spec":{"futureSpecField":{"hint":"kept","list":[1,2]}}}""", status: false, world.Token);
        var source = await world.Client.GetAsync(KubeResources.RawPods, "default", "counter", world.Token);
        source["spec"]!["futureSpecField"]!["hint"]!.GetValue<string>().ShouldBe("kept", "the in-process API server keeps the field");
        PackageJson.ToNode(PackageJson.FromNode<V1Pod>(source, "source"))["spec"]!.AsObject().ContainsKey("futureSpecField")
            .ShouldBeFalse("the package's model drops it: a clone built from the model would lose it");

        await world.CreateAsync("move", new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "5m" });
        var (migration, _) = await ReconcileUntilPhaseAsync(world, world.NewReconciler(), "move", MigrationPhase.Verifying);

        var clone = await world.Client.GetAsync(KubeResources.RawPods, "default", migration.Status!.ClonePod!, world.Token);
        clone["spec"]!["futureSpecField"]!["hint"]!.GetValue<string>().ShouldBe("kept");
        clone["spec"]!["futureSpecField"]!["list"]!.AsArray().Count.ShouldBe(2);
        clone["spec"]!["runtimeClassName"]!.GetValue<string>().ShouldBe(CloneRestore.RuntimeClassName);
        clone["spec"]!["nodeName"]!.GetValue<string>().ShouldBe("node-b");
    }

    [Fact]
    public async Task Precheck_refuses_a_target_without_the_handler_naming_it_and_touches_nothing()
    {
        await using var world = await World.StartAsync(targetHasHandler: false);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Failed);
        migration.Status.Message!.ShouldContain("node node-b has no 'podmigrate' runtime handler");
        migration.Status.Message!.ShouldContain("spec.restoreMethod: CheckpointImage");
        world.Source.Calls.ShouldNotContain("Checkpoint");
        world.Target.Calls.ShouldNotContain("PrepareRestore");
    }

    [Fact]
    public async Task A_target_that_cannot_prepare_rolls_back_releases_its_staging_and_resumes_the_source_without_a_clone()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, prepareFails: true, operations: true);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.RolledBack);
        migration.Status.RollbackReason.ShouldBe("RestoreFailed");
        migration.Status.Message!.ShouldContain("could not prepare checkpoint");
        world.LastClone.ShouldBeNull();
        // The prepare beside the checkpoint failed, then the ordinary one after it: the failure is the target's, not a race.
        world.Target.Prepares.Select(p => p.Follow).ToArray().ShouldBe(new[] { true, false });
        world.Target.Calls.ShouldContain("ReleasePrepared");
        world.Source.Calls.ShouldContain("Resume");
        world.Source.Calls.ShouldNotContain("Discard");
        world.Source.ReleasedFor.ShouldBe(new[] { migration.Status.CheckpointId.ShouldNotBeNull() });
    }

    [Fact]
    public async Task A_target_agent_unreachable_for_a_while_is_waited_for_with_the_source_held_and_the_migration_goes_on()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Target.PrepareUnavailableAnswers = 4; // the follow beside the checkpoint, then three ordinary prepares
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        var reachable = migration.Status.Conditions.ShouldNotBeNull().Single(c => c.Type == "TargetReachable");
        reachable.Status.ShouldBe("True");
        world.Source.Calls.ShouldNotContain("Resume");
        world.Source.Calls.ShouldContain("Discard");
    }

    [Fact]
    public async Task A_target_agent_unreachable_past_the_grace_rolls_back_and_resumes_the_source()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Target.PrepareUnavailableAnswers = int.MaxValue;
        world.TargetAgentGrace = TimeSpan.FromMilliseconds(300);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, migration.Status.Message);
        migration.Status.RollbackReason.ShouldBe("TargetUnavailable");
        migration.Status.Message!.ShouldContain("the agent on node node-b stayed unreachable");
        world.LastClone.ShouldBeNull();
        world.Source.Calls.ShouldContain("Resume");
        world.Source.Calls.ShouldNotContain("Discard");
    }

    [Fact]
    public async Task A_lazy_restore_commits_only_once_every_page_was_served()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Target.LazyPages = new LazyPagesReport(Filled: true);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        migration.Status.LazyPages.ShouldBe(true);
        migration.Status.PagesFilledAt.ShouldBe(RestoredAt.AddSeconds(2));
        world.LastClone.ShouldNotBeNull().Metadata.Annotations![RestoreAnnotations.Pages].ShouldBe(RestoreAnnotations.PagesLazy);
        world.Source.Calls.ShouldContain("Discard");
        world.Source.Calls.ShouldNotContain("Resume");
    }

    [Fact]
    public async Task A_lazy_pages_failure_rolls_back_deletes_the_clone_and_resumes_the_source()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Target.LazyPages = new LazyPagesReport(Filled: false, Failure: "lazy-pages daemon exited with 1: cannot read pages-1.img");
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, migration.Status.Message);
        migration.Status.RollbackReason.ShouldBe("LazyPagesFailed");
        migration.Status.Message!.ShouldContain("cannot read pages-1.img");
        migration.Status.PagesFilledAt.ShouldBeNull();
        await ShouldBeGoneAsync(world, migration.Status.ClonePod!);
        world.Target.Calls.ShouldContain("ReleasePrepared");
        world.Source.Calls.ShouldContain("Resume");
        world.Source.Calls.ShouldNotContain("Discard");
    }

    [Fact]
    public async Task Pages_still_unserved_at_the_restore_timeout_roll_back_and_resume_the_source()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Target.LazyPages = new LazyPagesReport(Filled: false); // a daemon that hangs: never done, never failed
        world.RestoreTimeout = TimeSpan.FromSeconds(2);
        var migration = await world.RunAsync(new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });

        migration.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, migration.Status.Message);
        migration.Status.RollbackReason.ShouldBe("LazyPagesFailed");
        migration.Status.Message!.ShouldContain("had not served every page");
        await ShouldBeGoneAsync(world, migration.Status.ClonePod!);
        world.Source.Calls.ShouldContain("Resume");
        world.Source.Calls.ShouldNotContain("Discard");
    }

    private static async Task ShouldBeGoneAsync(World world, string pod)
    {
        var e = await Should.ThrowAsync<PodMigrateException>(() => world.Client.GetAsync(KubeResources.V1Pods, "default", pod, world.Token));
        e.Kind.ShouldBe(ErrorKind.NotFound, $"the clone {pod} must be deleted by the rollback");
    }

    [Fact]
    public async Task CheckpointImage_stays_available_as_an_opt_in_and_needs_no_handler()
    {
        await using var world = await World.StartAsync(targetHasHandler: false);
        var migration = await world.RunAsync(new PodMigrationSpec
        {
            PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms", RestoreMethod = MigrationRestoreMethod.CheckpointImage,
        });

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        world.Target.Calls.ShouldContain("Restore");
        world.Target.Calls.ShouldNotContain("PrepareRestore");
        var clone = world.LastClone.ShouldNotBeNull();
        clone.Spec.RuntimeClassName.ShouldBeNull();
        clone.Spec.Containers[0].Image.ShouldBe(World.CheckpointImage);
        clone.Metadata.Annotations!.ShouldNotContainKey(RestoreAnnotations.Checkpoint);
        // Freeze instant from the agent, end at the clone's readiness (no runtime record on this path).
        migration.Status.SourceStoppedAt.ShouldBe(FrozenAt);
        migration.Status.Downtime.ShouldNotBeNull();
    }

    [Fact]
    public async Task A_restarted_controller_attaches_to_the_running_checkpoint_operation_and_never_starts_a_second()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Source.CheckpointGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await world.CreateAsync("move", new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });
        var first = world.NewReconciler();
        var (migration, requeue) = await ReconcileUntilAsync(world, first, "move", () => world.Source.CheckpointsRunning == 1);
        var operationId = migration.Status!.CheckpointOperation.ShouldNotBeNull();
        migration.Status.Phase.ShouldBe(MigrationPhase.Checkpointing);
        requeue.ShouldNotBeNull("a running operation is looked at again later, not waited for");

        // The controller restarts mid-checkpoint: a new one (new clients, nothing in memory) reconciles the same migration.
        var second = world.NewReconciler();
        (migration, _) = await world.ReconcileOnceAsync(second, "move").WaitAsync(TimeSpan.FromSeconds(10));
        migration.Status!.CheckpointOperation.ShouldBe(operationId);
        migration.Status.Phase.ShouldBe(MigrationPhase.Checkpointing);
        world.Source.CheckpointGate.SetResult();
        (migration, _) = await ReconcileUntilAsync(world, second, "move", () => false, terminal: true);

        migration.Status!.Phase.ShouldBe(MigrationPhase.Succeeded, migration.Status.Message);
        migration.Status.CheckpointOperation.ShouldBe(operationId);
        world.Source.CheckpointsStarted.ShouldBe(1, "the new controller attached to the running checkpoint");
        world.Source.Attaches.ShouldBeGreaterThanOrEqualTo(2);
        migration.Status.SourceStoppedAt.ShouldBe(FrozenAt, "the result read by attaching carries the agent's freeze instant");
        world.Target.Calls.ShouldContain("PrepareRestore");
        world.Source.Calls.ShouldContain("Discard");
    }

    [Fact]
    public async Task One_worker_drives_two_migrations_whose_checkpoints_run_at_the_same_time()
    {
        await using var world = await World.StartAsync(targetHasHandler: true, operations: true);
        world.Source.CheckpointGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await world.AddSourcePodAsync("counter2");
        await world.CreateAsync("move1", new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "100ms" });
        await world.CreateAsync("move2", new PodMigrationSpec { PodName = "counter2", TargetNode = "node-b", VerifyWindow = "100ms" });
        var worker = world.NewReconciler();

        // One worker takes the keys in turn; each reconcile returns while the checkpoints run (bounded: none blocks).
        for (var round = 0; round < 50 && world.Source.CheckpointsRunning < 2; round++)
        {
            await world.ReconcileOnceAsync(worker, "move1").WaitAsync(TimeSpan.FromSeconds(10));
            await world.ReconcileOnceAsync(worker, "move2").WaitAsync(TimeSpan.FromSeconds(10));
        }
        world.Source.CheckpointsRunning.ShouldBe(2, "both checkpoints run at once under one worker");

        world.Source.CheckpointGate.SetResult();
        var phases = new Dictionary<string, string?>();
        for (var round = 0; round < 200 && !(phases.Count == 2 && phases.Values.All(MigrationPhase.IsTerminal)); round++)
        {
            foreach (var name in new[] { "move1", "move2" })
            {
                var (migration, _) = await world.ReconcileOnceAsync(worker, name).WaitAsync(TimeSpan.FromSeconds(10));
                phases[name] = migration.Status?.Phase;
            }
            await Task.Delay(20);
        }
        phases["move1"].ShouldBe(MigrationPhase.Succeeded);
        phases["move2"].ShouldBe(MigrationPhase.Succeeded);
        world.Source.CheckpointsStarted.ShouldBe(2);
    }

    [Fact]
    public async Task A_verifying_migration_whose_clone_did_not_change_is_reconciled_from_the_informer_cache_without_a_GET()
    {
        await using var world = await World.StartAsync(targetHasHandler: true);
        await world.CreateAsync("move", new PodMigrationSpec { PodName = "counter", TargetNode = "node-b", VerifyWindow = "5m" });
        var (migration, _) = await ReconcileUntilPhaseAsync(world, world.NewReconciler(), "move", MigrationPhase.Verifying);
        var clone = migration.Status!.ClonePod!;

        using var counting = new ControlledApi(world.Client);
        var pods = new Informer<V1Pod>(counting, KubeResources.V1Pods, new InformerOptions<V1Pod> { Namespace = "default" }, TimeProvider.System, NullLogger<Informer<V1Pod>>.Instance);
        await using var informing = Background.Start(pods.RunAsync, world.Token);
        await pods.WaitForSyncAsync(world.Token);
        // The cache holds the clone as the kubelet last reported it: Ready, the migration's window still running.
        pods.Get(new ObjectKey("default", clone))!.Status!.Phase.ShouldBe("Running");

        var requeue = await world.NewReconciler(counting, pods).ReconcileAsync(migration, world.Token);

        counting.GetCalls.ShouldBe(0, "the source and clone pods come from the cache");
        requeue.ShouldNotBeNull("still in its verification window: polled again later");
        (await world.Client.GetAsync(PodMigration.Resource, "default", "move", world.Token)).Status!.Phase.ShouldBe(MigrationPhase.Verifying);
        // The same reconcile without the cache reads the clone from the server: the counter sees what it should.
        await world.NewReconciler(counting, null).ReconcileAsync(migration, world.Token);
        counting.GetCalls.ShouldBe(1);
    }

    private static async Task<(PodMigration, TimeSpan?)> ReconcileUntilPhaseAsync(World world, PodMigrationReconciler reconciler, string name, string phase)
    {
        for (var round = 0; round < 300; round++)
        {
            var (migration, requeue) = await world.ReconcileOnceAsync(reconciler, name).WaitAsync(TimeSpan.FromSeconds(10));
            if (migration.Status?.Phase == phase)
            {
                return (migration, requeue);
            }
            MigrationPhase.IsTerminal(migration.Status?.Phase).ShouldBeFalse(migration.Status?.Message);
            await Task.Delay(requeue is { } d && d < TimeSpan.FromMilliseconds(200) ? d : TimeSpan.FromMilliseconds(20));
        }
        throw new ShouldAssertException($"{name} did not reach {phase} in 300 reconciles");
    }

    /// <summary>Reconciles (each call bounded: a reconcile must not wait for an agent's operation) until the condition or a terminal phase.</summary>
    private static async Task<(PodMigration, TimeSpan?)> ReconcileUntilAsync(World world, PodMigrationReconciler reconciler, string name, Func<bool> condition, bool terminal = false)
    {
        for (var round = 0; round < 300; round++)
        {
            var (migration, requeue) = await world.ReconcileOnceAsync(reconciler, name).WaitAsync(TimeSpan.FromSeconds(10));
            if (condition() || (terminal && MigrationPhase.IsTerminal(migration.Status?.Phase)))
            {
                return (migration, requeue);
            }
            await Task.Delay(requeue is { } d && d < TimeSpan.FromMilliseconds(200) ? d : TimeSpan.FromMilliseconds(20));
        }
        throw new ShouldAssertException($"{name} did not get there in 300 reconciles");
    }

    [Fact]
    public void Settings_default_to_RuntimeClass_and_refuse_an_unknown_restore_method()
    {
        MigrationSettings.From(new PodMigrationSpec { PodName = "p" }).ThroughCheckpointImage.ShouldBeFalse();
        MigrationSettings.From(new PodMigrationSpec { PodName = "p", RestoreMethod = "CheckpointImage" }).ThroughCheckpointImage.ShouldBeTrue();
        Should.Throw<PodMigrateException>(() => MigrationSettings.From(new PodMigrationSpec { PodName = "p", RestoreMethod = "Direct" }))
            .Message.ShouldContain("spec.restoreMethod");
    }

    [Fact]
    public void Downtime_runs_from_the_agents_freeze_instant_to_the_runtimes_record_else_to_readiness()
    {
        var ready = RestoredAt.AddSeconds(5);
        new PodMigrationStatus { SourceStoppedAt = FrozenAt, FrozenAt = FrozenAt.AddSeconds(-1) }.MigrationDowntime(RestoredAt, ready)
            .ShouldBe(TimeSpan.FromMilliseconds(1234));
        new PodMigrationStatus { FrozenAt = FrozenAt }.MigrationDowntime(null, ready).ShouldBe(ready - FrozenAt);
        new PodMigrationStatus().MigrationDowntime(RestoredAt, ready).ShouldBeNull();
    }

    /// <summary>The API server with two Ready nodes and a Running source pod, two fake agents, and the reconciler; the test plays the kubelet.</summary>
    private sealed class World : IAsyncDisposable
    {
        public const string CheckpointImage = "localhost/podmigrate/checkpoint/default-counter:ck";

        private readonly ApiServerFixture _api;
        private readonly Directory _agents;

        private World(ApiServerFixture api, FakeMigrationAgent source, FakeMigrationAgent target)
        {
            _api = api;
            Source = source;
            Target = target;
            _agents = new Directory(new Dictionary<string, string> { ["node-a"] = source.Address, ["node-b"] = target.Address });
        }

        public FakeMigrationAgent Source { get; }

        public FakeMigrationAgent Target { get; }

        public V1Pod? LastClone { get; private set; }

        /// <summary>The controller's <see cref="ControllerOptions.TargetAgentGrace"/> for <see cref="RunAsync"/>.</summary>
        public TimeSpan TargetAgentGrace { get; set; } = new ControllerOptions().TargetAgentGrace;

        /// <summary>The controller's <see cref="ControllerOptions.RestoreTimeout"/> for <see cref="RunAsync"/>.</summary>
        public TimeSpan RestoreTimeout { get; set; } = new ControllerOptions().RestoreTimeout;

        /// <param name="sourceImageId">The source container status's imageID, as its node reported it (null: no container status).</param>
        public static async Task<World> StartAsync(bool targetHasHandler, bool prepareFails = false, bool operations = false, string? sourceImageId = null)
        {
            var api = await ApiServerFixture.StartAsync();
            // The repository's own CRD (its schema and defaults are part of what is tested).
            var crd = KubeYaml.ToJsonDocuments(await File.ReadAllTextAsync(CrdPath(), api.Token), "deploy/10-podmigration-crd.yaml").Single();
            await api.Client.CreateAsync(KubeResources.CustomResourceDefinitions, null,
                KubeJson.Deserialize(System.Text.Encoding.UTF8.GetString(crd), KubeClientJsonContext.Default.CustomResource, "crd"), api.Token);
            foreach (var node in new[] { "node-a", "node-b" })
            {
                await api.Client.CreateAsync(KubeResources.V1Nodes, null, Json<k8s.Models.V1Node>("""
                    {"metadata":{"name":"NODE"},"status":{"conditions":[{"type":"Ready","status":"True"}],"allocatable":{"memory":"8Gi"}}}
                    """.Replace("NODE", node, StringComparison.Ordinal), PackageJson.TypeInfo<k8s.Models.V1Node>()), api.Token);
            }
            var pod = await api.Client.CreateAsync(KubeResources.V1Pods, "default", Json<V1Pod>("""
                {"metadata":{"name":"counter","namespace":"default","labels":{"app":"counter"}},
                 "spec":{"nodeName":"node-a","containers":[{"name":"counter","image":"localhost:5000/podmigrate/counter:1"}]}}
                """, PackageJson.TypeInfo<V1Pod>()), api.Token);
            var containerStatuses = sourceImageId is null ? "" : $$$""","containerStatuses":[{"name":"counter","ready":true,"restartCount":0,"image":"localhost:5000/podmigrate/counter:1","imageID":"{{{sourceImageId}}}"}]""";
            await api.Client.PatchAsync(KubeResources.V1Pods, "default", "counter", PatchType.MergePatch,
                $$$"""{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]{{{containerStatuses}}}}}""", status: true, api.Token);
            var source = await FakeMigrationAgent.StartAsync("node-a", api.Client, restoreRuntime: true, prepareFails: false, operations);
            var target = await FakeMigrationAgent.StartAsync("node-b", api.Client, targetHasHandler, prepareFails, operations);
            _ = pod;
            return new World(api, source, target);
        }

        public Task<PodMigration> CreateAsync(string name, PodMigrationSpec spec)
            => _api.Client.CreateAsync(PodMigration.Resource, "default", new PodMigration { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default" }, Spec = spec }, _api.Token);

        public KubernetesApiClient Client => _api.Client;

        public CancellationToken Token => _api.Token;

        /// <summary>A reconciler as a (new) controller process has it: its own agent clients.</summary>
        public PodMigrationReconciler NewReconciler() => NewReconciler(_api.Client, podCache: null);

        /// <summary>A reconciler on <paramref name="api"/>, reading pods from <paramref name="podCache"/> (null: GETs).</summary>
        public PodMigrationReconciler NewReconciler(IKubernetesApi api, Informer<V1Pod>? podCache)
        {
            var options = new ControllerOptions { PollInterval = TimeSpan.FromMilliseconds(50), CloneDeleteGraceSeconds = 0 };
            var recorder = new EventRecorder(api, new EventRecorderOptions { Component = MigrationEvents.Component }, TimeProvider.System, NullLogger<EventRecorder>.Instance);
            return new PodMigrationReconciler(api, _agents, new MigrationEvents(recorder), options, TimeProvider.System, NullLogger<PodMigrationReconciler>.Instance, podCache);
        }

        /// <summary>One reconcile of <paramref name="name"/> (as one worker takes one key), the kubelet played after it.</summary>
        public async Task<(PodMigration Migration, TimeSpan? Requeue)> ReconcileOnceAsync(PodMigrationReconciler reconciler, string name)
        {
            var requeue = await reconciler.ReconcileAsync("default", name, _api.Token);
            var migration = await _api.Client.GetAsync(PodMigration.Resource, "default", name, _api.Token);
            await PlayKubeletAsync(migration, _api.Token);
            return (migration, requeue);
        }

        public async Task AddSourcePodAsync(string name)
        {
            await _api.Client.CreateAsync(KubeResources.V1Pods, "default", Json<V1Pod>("""
                {"metadata":{"name":"NAME","namespace":"default","labels":{"app":"counter"}},
                 "spec":{"nodeName":"node-a","containers":[{"name":"counter","image":"localhost:5000/podmigrate/counter:1"}]}}
                """.Replace("NAME", name, StringComparison.Ordinal), PackageJson.TypeInfo<V1Pod>()), _api.Token);
            await _api.Client.PatchAsync(KubeResources.V1Pods, "default", name, PatchType.MergePatch,
                """{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}""", status: true, _api.Token);
        }

        /// <summary>Creates the migration and reconciles it to a terminal phase, running the clone as a kubelet would.</summary>
        public async Task<PodMigration> RunAsync(PodMigrationSpec spec)
        {
            var token = _api.Token;
            var client = _api.Client;
            await client.CreateAsync(PodMigration.Resource, "default", new PodMigration { Metadata = new V1ObjectMeta { Name = "move", NamespaceProperty = "default" }, Spec = spec }, token);
            var options = new ControllerOptions { PollInterval = TimeSpan.FromMilliseconds(50), CloneDeleteGraceSeconds = 0, TargetAgentGrace = TargetAgentGrace, RestoreTimeout = RestoreTimeout };
            var recorder = new EventRecorder(client, new EventRecorderOptions { Component = MigrationEvents.Component }, TimeProvider.System, NullLogger<EventRecorder>.Instance);
            var reconciler = new PodMigrationReconciler(client, _agents, new MigrationEvents(recorder), options, TimeProvider.System, NullLogger<PodMigrationReconciler>.Instance);
            while (true)
            {
                var requeue = await reconciler.ReconcileAsync("default", "move", token);
                var migration = await client.GetAsync(PodMigration.Resource, "default", "move", token);
                if (MigrationPhase.IsTerminal(migration.Status?.Phase))
                {
                    return migration;
                }
                await PlayKubeletAsync(migration, token);
                if (requeue is { } delay)
                {
                    await Task.Delay(delay, token);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _agents.Dispose();
            await Source.DisposeAsync();
            await Target.DisposeAsync();
            await _api.DisposeAsync();
        }

        private async Task PlayKubeletAsync(PodMigration migration, CancellationToken token)
        {
            if (migration.Status?.ClonePod is not { } name)
            {
                return;
            }
            V1Pod clone;
            try
            {
                clone = await _api.Client.GetAsync(KubeResources.V1Pods, "default", name, token);
            }
            catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
            {
                return;
            }
            LastClone = clone;
            if (clone.Status?.Phase != "Running")
            {
                var now = DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
                await _api.Client.PatchAsync(KubeResources.V1Pods, "default", name, PatchType.MergePatch, """
                    {"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastTransitionTime":"NOW"}],
                     "containerStatuses":[{"name":"counter","ready":true,"restartCount":0,"image":"x","imageID":"x","containerID":"containerd://c","state":{"running":{"startedAt":"NOW"}}}]}}
                    """.Replace("NOW", now, StringComparison.Ordinal), status: true, token);
            }
        }

        private static string CrdPath()
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "PodMigrate.sln")))
                {
                    return Path.Combine(directory.FullName, "deploy", "10-podmigration-crd.yaml");
                }
            }
            throw new FileNotFoundException($"no PodMigrate.sln above {AppContext.BaseDirectory}: this test reads deploy/10-podmigration-crd.yaml");
        }

        private static T Json<T>(string json, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) => KubeJson.Deserialize(json, type, typeof(T).Name);
    }

    /// <summary>The lazy-pages daemon's outcome as the target agent reports it: filled, failed, or still filling.</summary>
    private sealed record LazyPagesReport(bool Filled, string? Failure = null);

    /// <summary>Agents by node name over cleartext gRPC on loopback.</summary>
    private sealed class Directory(Dictionary<string, string> addresses) : IAgentDirectory, IDisposable
    {
        private readonly ConcurrentDictionary<string, AgentClient> _clients = new(StringComparer.Ordinal);

        public ValueTask<AgentClient> GetAsync(string nodeName, CancellationToken cancellationToken)
            => addresses.TryGetValue(nodeName, out var address)
                ? ValueTask.FromResult(_clients.GetOrAdd(nodeName, _ => AgentClient.Connect(address)))
                : ValueTask.FromException<AgentClient>(PodMigrateException.Unavailable($"node {nodeName} has no agent"));

        public ValueTask<IReadOnlyList<AgentEndpoint>> ListAsync(CancellationToken cancellationToken)
            => ValueTask.FromResult<IReadOnlyList<AgentEndpoint>>(addresses.Select(a => new AgentEndpoint(a.Key, a.Value)).ToList());

        public void Dispose()
        {
            foreach (var client in _clients.Values)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>An agent on the real gRPC layer that records what it was asked and answers as a healthy node would.</summary>
    private sealed class FakeMigrationAgent : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<string> _calls = new();
        private readonly ConcurrentQueue<string> _releasedFor = new();
        private readonly List<string> _published = [];

        private FakeMigrationAgent(WebApplication app, string address)
        {
            _app = app;
            Address = address;
        }

        public string Address { get; }

        public IReadOnlyCollection<string> Calls => [.. _calls];

        /// <summary>The checkpoint id each Resume or Discard named ("" when none).</summary>
        public IReadOnlyCollection<string> ReleasedFor => [.. _releasedFor];

        public bool? CloneExistedAtPrepare { get; private set; }

        public string? PreparedFor { get; private set; }

        /// <summary>How many PrepareRestore operations are answered Unavailable (an agent restarting) before one is taken.</summary>
        public int PrepareUnavailableAnswers;

        /// <summary>How the runtime restored the clone, as GetRestored reports it: eager (null), or lazy with these pages.</summary>
        public LazyPagesReport? LazyPages { get; set; }

        /// <summary>Every PrepareRestore: whether it followed a checkpoint being written, and the image it was to pull.</summary>
        public ConcurrentQueue<(bool Follow, string Image)> Prepares { get; } = new();

        /// <summary>Agent-owned operations (StartOperation and friends); without, the fake is an older agent (Unimplemented).</summary>
        public bool Operations { get; private init; }

        /// <summary>Checkpoint operations run until this completes (already complete unless a test holds them).</summary>
        public TaskCompletionSource CheckpointGate { get; set; } = CompletedGate();

        /// <summary>Checkpoints the fake really started (not attaches).</summary>
        public int CheckpointsStarted => Volatile.Read(ref _checkpointsStarted);

        /// <summary>StartOperation calls that attached to a known id.</summary>
        public int Attaches => Volatile.Read(ref _attaches);

        /// <summary>Checkpoint operations running right now.</summary>
        public int CheckpointsRunning => Volatile.Read(ref _checkpointsRunning);

        private readonly ConcurrentDictionary<string, Operation> _operations = new(StringComparer.Ordinal);
        private int _checkpointsStarted;
        private int _attaches;
        private int _checkpointsRunning;

        private static TaskCompletionSource CompletedGate()
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            gate.SetResult();
            return gate;
        }

        public static async Task<FakeMigrationAgent> StartAsync(string node, KubernetesApiClient api, bool restoreRuntime, bool prepareFails, bool operations = false)
        {
            var port = TestAgentLayout.FreePort();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ListenGrpcTcp(new IPEndPoint(IPAddress.Loopback, port), null));
            builder.Services.AddGrpc();
            FakeMigrationAgent? agent = null;
            builder.Services.AddSingleton(_ => new Service(agent!, node, api, restoreRuntime, prepareFails));
            var app = builder.Build();
            agent = new FakeMigrationAgent(app, $"http://127.0.0.1:{port}") { Operations = operations };
            app.MapGrpcService<Service>();
            await app.StartAsync();
            return agent;
        }

        /// <summary>The agent API as this fake answers it; errors travel as the real agent's interceptor sends them.</summary>
        private sealed class Service(FakeMigrationAgent agent, string node, KubernetesApiClient api, bool restoreRuntime, bool prepareFails) : AgentService.AgentServiceBase
        {
            private static RpcException Failure(PodMigrateException e) => new(ErrorMapping.ToStatus(e));

            public override Task<NodeInfo> GetNodeInfo(GetNodeInfoRequest request, ServerCallContext context)
            {
                var info = new NodeInfo
                {
                    NodeName = node, Architecture = "x64", CriuVersion = 40201, CriuVersionText = "4.2.1",
                    Share = new ShareInfo { Path = "/share", Writable = true }, RestoreRuntime = restoreRuntime,
                };
                info.RuntimeHandlers.Add(restoreRuntime ? ["runc", "podmigrate"] : ["runc"]);
                return Task.FromResult(info);
            }

            public override Task<HealthResponse> Health(HealthRequest request, ServerCallContext context)
                => Task.FromResult(new HealthResponse { Status = HealthResponse.Types.ServingStatus.Serving });

            public override Task<CheckpointInfo> InspectCheckpoint(InspectCheckpointRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("InspectCheckpoint");
                lock (agent._published)
                {
                    return agent._published.Contains(request.CheckpointId)
                        ? Task.FromResult(new CheckpointInfo { CheckpointId = request.CheckpointId })
                        : throw Failure(new PodMigrateException(ErrorKind.NotFound, $"checkpoint {request.CheckpointId} not found"));
                }
            }

            public override async Task Checkpoint(CheckpointRequest request, IServerStreamWriter<CheckpointEvent> responseStream, ServerCallContext context)
            {
                agent._calls.Enqueue("Checkpoint");
                lock (agent._published)
                {
                    agent._published.Add(request.CheckpointId);
                }
                await responseStream.WriteAsync(new CheckpointEvent
                {
                    Result = new CheckpointResult
                    {
                        Checkpoint = new CheckpointInfo { CheckpointId = request.CheckpointId },
                        Wall = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                        Frozen = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                        SourceState = SourceState.SourceStopped,
                        FrozenAt = Timestamp.FromDateTimeOffset(FrozenAt),
                    },
                });
            }

            public override async Task<Operation> StartOperation(StartOperationRequest request, ServerCallContext context)
            {
                if (!agent.Operations)
                {
                    throw new RpcException(new Status(StatusCode.Unimplemented, "an older agent"));
                }
                agent._calls.Enqueue("StartOperation");
                if (agent._operations.TryGetValue(request.OperationId, out var known))
                {
                    Interlocked.Increment(ref agent._attaches);
                    lock (known)
                    {
                        return known.Clone();
                    }
                }
                var operation = new Operation
                {
                    OperationId = request.OperationId, State = OperationState.OperationRunning, Started = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
                    Progress = new Progress { Phase = Phase.Dump, Message = "dumping" },
                };
                agent._operations[request.OperationId] = operation;
                switch (request.RequestCase)
                {
                    case StartOperationRequest.RequestOneofCase.Checkpoint:
                        agent._calls.Enqueue("Checkpoint");
                        Interlocked.Increment(ref agent._checkpointsStarted);
                        Interlocked.Increment(ref agent._checkpointsRunning);
                        var id = request.Checkpoint.CheckpointId;
                        _ = agent.CheckpointGate.Task.ContinueWith(_ =>
                        {
                            lock (agent._published)
                            {
                                agent._published.Add(id);
                            }
                            lock (operation)
                            {
                                operation.Checkpoint = new CheckpointResult
                                {
                                    Checkpoint = new CheckpointInfo { CheckpointId = id }, Wall = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                                    Frozen = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)), SourceState = SourceState.SourceStopped, FrozenAt = Timestamp.FromDateTimeOffset(FrozenAt),
                                };
                                operation.State = OperationState.OperationSucceeded;
                                operation.Done = true;
                            }
                            Interlocked.Decrement(ref agent._checkpointsRunning);
                        }, TaskScheduler.Default);
                        break;
                    case StartOperationRequest.RequestOneofCase.PrepareRestore:
                        if (Interlocked.Decrement(ref agent.PrepareUnavailableAnswers) >= 0)
                        {
                            agent._operations.TryRemove(request.OperationId, out _);
                            throw new RpcException(new Status(StatusCode.Unavailable, "fake: the agent is restarting"));
                        }
                        agent._calls.Enqueue("PrepareRestore");
                        agent.PreparedFor = $"{request.PrepareRestore.PodNamespace}/{request.PrepareRestore.PodName}/{request.PrepareRestore.Container}";
                        agent.Prepares.Enqueue((request.PrepareRestore.Follow, request.PrepareRestore.Image));
                        agent.CloneExistedAtPrepare ??= await CloneExistsAsync(request.PrepareRestore, context.CancellationToken);
                        lock (operation)
                        {
                            if (prepareFails)
                            {
                                operation.Error = new OperationError { Code = (int)StatusCode.FailedPrecondition, Message = "fake: cannot prepare" };
                                operation.State = OperationState.OperationFailed;
                                operation.Done = true;
                                break;
                            }
                            operation.Prepared = new PreparedCheckpointInfo { CheckpointId = request.PrepareRestore.CheckpointId, Path = "/run/prepared/" + request.PrepareRestore.CheckpointId, Wall = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)) };
                            operation.State = OperationState.OperationSucceeded;
                            operation.Done = true;
                        }
                        break;
                    default:
                        throw new RpcException(new Status(StatusCode.Unimplemented, "restore operations are not faked"));
                }
                lock (operation)
                {
                    return operation.Clone();
                }
            }

            public override Task<HoldInfo> GetHold(GetHoldRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("GetHold");
                lock (agent._published)
                {
                    var pod = request.Container?.Pod?.Pod ?? "";
                    var last = agent._published.LastOrDefault(id => pod.Length == 0 || id.StartsWith(pod + "-", StringComparison.Ordinal));
                    return Task.FromResult(last is null
                        ? new HoldInfo { State = HoldState.HoldNone, ContainerState = PodMigrate.Agent.V1.ContainerState.ContainerRunning }
                        : new HoldInfo { CheckpointId = last, State = HoldState.HoldCommitted, ContainerState = PodMigrate.Agent.V1.ContainerState.ContainerPaused });
                }
            }

            public override async Task Restore(RestoreRequest request, IServerStreamWriter<RestoreEvent> responseStream, ServerCallContext context)
            {
                agent._calls.Enqueue("Restore");
                await responseStream.WriteAsync(new RestoreEvent { Result = new RestoreResult { CheckpointId = request.CheckpointId, CheckpointImage = World.CheckpointImage } });
            }

            private async Task<bool> CloneExistsAsync(PrepareRestoreRequest request, CancellationToken cancellationToken)
            {
                try
                {
                    await api.GetAsync(KubeResources.V1Pods, request.PodNamespace, request.PodName, cancellationToken);
                    return true;
                }
                catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
                {
                    return false;
                }
            }

            public override async Task<PreparedCheckpointInfo> PrepareRestore(PrepareRestoreRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("PrepareRestore");
                agent.Prepares.Enqueue((request.Follow, request.Image));
                try
                {
                    await api.GetAsync(KubeResources.V1Pods, request.PodNamespace, request.PodName, context.CancellationToken);
                    agent.CloneExistedAtPrepare = true;
                }
                catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
                {
                    agent.CloneExistedAtPrepare = false;
                }
                if (prepareFails)
                {
                    throw Failure(new PodMigrateException(ErrorKind.DataLoss, $"checkpoint {request.CheckpointId}: file \"checkpoint/pages-1.img\" has sha256 0000, the manifest says 1111"));
                }
                agent.PreparedFor = $"{request.PodNamespace}/{request.PodName}/{request.Container}";
                return new PreparedCheckpointInfo { CheckpointId = request.CheckpointId, Path = "/run/prepared/" + request.CheckpointId, Wall = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)) };
            }

            public override Task<RestoredInfo> GetRestored(GetRestoredRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("GetRestored");
                var restored = new RestoredInfo { CheckpointId = request.CheckpointId, ContainerId = "c", RestoredAt = Timestamp.FromDateTimeOffset(RestoredAt) };
                if (agent.LazyPages is { } pages)
                {
                    restored.LazyPages = true;
                    restored.PagesFailure = pages.Failure ?? "";
                    if (pages.Filled)
                    {
                        restored.PagesFilledAt = Timestamp.FromDateTimeOffset(RestoredAt.AddSeconds(2));
                        restored.PagesFill = Duration.FromTimeSpan(TimeSpan.FromSeconds(2));
                    }
                }
                return Task.FromResult(restored);
            }

            public override Task<ReleasePreparedResponse> ReleasePrepared(ReleasePreparedRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("ReleasePrepared");
                return Task.FromResult(new ReleasePreparedResponse { Removed = true });
            }

            public override Task<ResumeResponse> Resume(ResumeRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("Resume");
                agent._releasedFor.Enqueue(request.CheckpointId);
                return Task.FromResult(new ResumeResponse { SourceState = SourceState.SourceRunning });
            }

            public override Task<DiscardResponse> Discard(DiscardRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("Discard");
                agent._releasedFor.Enqueue(request.CheckpointId);
                return Task.FromResult(new DiscardResponse { SourceState = SourceState.SourceGone });
            }

            public override Task<DeleteCheckpointResponse> DeleteCheckpoint(DeleteCheckpointRequest request, ServerCallContext context)
            {
                agent._calls.Enqueue("DeleteCheckpoint");
                return Task.FromResult(new DeleteCheckpointResponse());
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
