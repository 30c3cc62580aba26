using k8s;
using k8s.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Controller.Runtime;
using PodMigrate.Kube.Client;
using PodMigrate.Kube.Models;

namespace PodMigrate.Controller.Tests.Runtime;

[Trait("Category", "Integration")]
public sealed class EventRecorderTests
{
    private static readonly ResourceKind<CustomResource> Migrations = KubeResources.Custom("podmigrate.io", "v1alpha1", "podmigrations", "PodMigration");

    private static EventRecorder Recorder(IKubernetesApi api, TimeProvider time, ILogger<EventRecorder>? logger = null, TimeSpan? writeTimeout = null) => new(api, new EventRecorderOptions
    {
        Component = "podmigrate-controller",
        Host = "controller-0",
        AggregationWindow = TimeSpan.FromMinutes(10),
        WriteTimeout = writeTimeout ?? TimeSpan.FromSeconds(10),
    }, time, logger ?? NullLogger<EventRecorder>.Instance);

    private static V1ObjectReference Migration(string name = "m1") => KubeObjects.Reference(Migrations, new V1ObjectMeta
    {
        NamespaceProperty = "default",
        Name = name,
        Uid = "uid-" + name,
        ResourceVersion = "42",
    });

    [Fact]
    public async Task Three_identical_events_are_one_Event_with_count_3()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var time = new FakeTimeProvider();
        using var recorder = Recorder(api.Client, time);
        var first = time.GetUtcNow();

        for (var i = 0; i < 3; i++)
        {
            await recorder.NormalAsync(Migration(), "CheckpointStarted", "checkpointing counter on node-a", api.Token);
            time.Advance(TimeSpan.FromSeconds(2));
        }

        var events = await api.EventsAsync("default");
        var single = events.ShouldHaveSingleItem();
        single.Count.ShouldBe(3);
        single.Type.ShouldBe("Normal");
        single.Reason.ShouldBe("CheckpointStarted");
        single.Message.ShouldBe("checkpointing counter on node-a");
        single.FirstTimestamp.ShouldBe(first.UtcDateTime);
        single.LastTimestamp.ShouldBe((first + TimeSpan.FromSeconds(4)).UtcDateTime);
        single.Source!.Component.ShouldBe("podmigrate-controller");
        single.Source.Host.ShouldBe("controller-0");
        single.Metadata.Name.ShouldStartWith("m1.");
        var involved = single.InvolvedObject;
        (involved.ApiVersion, involved.Kind, involved.NamespaceProperty, involved.Name, involved.Uid, involved.ResourceVersion)
            .ShouldBe(("podmigrate.io/v1alpha1", "PodMigration", "default", "m1", "uid-m1", "42"));
    }

    [Fact]
    public async Task Different_events_and_repeats_after_the_window_are_new_Events()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var time = new FakeTimeProvider();
        using var recorder = Recorder(api.Client, time);

        await recorder.NormalAsync(Migration(), "CheckpointStarted", "node-a", api.Token);
        await recorder.NormalAsync(Migration(), "CheckpointStarted", "node-b", api.Token);
        await recorder.WarningAsync(Migration(), "CheckpointStarted", "node-a", api.Token);
        await recorder.NormalAsync(Migration("m2"), "CheckpointStarted", "node-a", api.Token);
        time.Advance(TimeSpan.FromMinutes(11));
        await recorder.NormalAsync(Migration(), "CheckpointStarted", "node-a", api.Token);

        var events = await api.EventsAsync("default");
        events.Count.ShouldBe(5);
        events.ShouldAllBe(e => e.Count == 1);
        events.Count(e => e.Type == "Warning").ShouldBe(1);
    }

    [Fact]
    public async Task An_aggregated_Event_the_server_dropped_is_created_again()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var time = new FakeTimeProvider();
        using var recorder = Recorder(api.Client, time);
        await recorder.WarningAsync(Migration(), "RestoreFailed", "no space left on node-b", api.Token);
        var first = (await api.EventsAsync("default")).ShouldHaveSingleItem();
        await api.Client.Kubernetes.CoreV1.DeleteNamespacedEventAsync(first.Metadata.Name, "default", cancellationToken: api.Token);

        await recorder.WarningAsync(Migration(), "RestoreFailed", "no space left on node-b", api.Token);
        await recorder.WarningAsync(Migration(), "RestoreFailed", "no space left on node-b", api.Token);

        var again = (await api.EventsAsync("default")).ShouldHaveSingleItem();
        again.Metadata.Name.ShouldNotBe(first.Metadata.Name);
        again.Count.ShouldBe(2);
    }

    [Fact]
    public async Task Recording_never_throws_into_the_caller()
    {
        await using var api = await ApiServerFixture.StartAsync();
        var wire = new Wire { Partitioned = true };
        using var client = api.ClientWith(wire);
        var logger = new ListLogger<EventRecorder>();
        using var recorder = Recorder(client, TimeProvider.System, logger, writeTimeout: TimeSpan.FromMilliseconds(200));

        // An API server that does not answer, an object without a name, an unknown namespace: logged and dropped.
        await recorder.NormalAsync(Migration(), "CheckpointStarted", "node-a", api.Token);
        await recorder.NormalAsync(new V1ObjectReference { Kind = "PodMigration" }, "CheckpointStarted", "node-a", api.Token);
        wire.Partitioned = false;
        await recorder.NormalAsync(KubeObjects.Reference(Migrations, new V1ObjectMeta { NamespaceProperty = "nowhere", Name = "m1" }), "CheckpointStarted", "x", api.Token);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await recorder.NormalAsync(Migration(), "CheckpointStarted", "node-a", cancelled.Token);

        logger.Entries.Count(e => e.Level == LogLevel.Warning && e.Message.Contains("dropped", StringComparison.Ordinal)).ShouldBe(3);
        (await api.EventsAsync(null)).ShouldBeEmpty();
    }
}
