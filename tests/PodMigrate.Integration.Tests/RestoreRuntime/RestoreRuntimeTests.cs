using System.Formats.Tar;
using System.Globalization;
using System.Text;
using System.Text.Json;
using k8s.Models;
using PodMigrate.Agent.Preparing;
using PodMigrate.Core.Errors;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.NodeEmulator.Kubelet;
using PodMigrate.Runtime.Contract;
using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.RestoreRuntime;

/// <summary>
/// podmigrate-runc as the runtime handler `podmigrate` of the local cluster's nodes (node-a on containerd 2.1, node-b on
/// 1.7, which has no restore through CRI): pods are run through CRI the way the kubelet runs them, with the pod's
/// runtimeClassName as the handler. A checkpoint is "prepared" here the way the agent lays it out (PreparedLayout, seal
/// written last) so that the runtime is tested on its own.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
[Trait("Requires", "Criu")]
public sealed partial class RestoreRuntimeTests(LocalCluster cluster)
{
    private const string Handler = "podmigrate";
    private const string NodeA = "node-a";
    private const string NodeB = "node-b";
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(150);

    [Theory(Timeout = 180_000)]
    [InlineData(NodeA)]
    [InlineData(NodeB)]
    public async Task A_normal_pod_under_the_RuntimeClass_runs_as_under_runc(string node)
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var pod = UnderRuntimeClass(TestPods.Counter(cluster.Image("counter"), "rc-plain"));
        await using var _ = await RunAsync(node, pod, cts.Token);

        var running = (await cluster.Runner(node).GetAsync(TestPods.Namespace, pod.Metadata.Name!, cts.Token)).ShouldNotBeNull();
        running.State.ShouldBe("Ready");
        running.Containers.ShouldHaveSingleItem().State.ShouldBe("Running");
        var first = await WaitForCountAboveAsync(node, pod, long.MinValue, cts.Token);
        (await WaitForCountAboveAsync(node, pod, first, cts.Token)).ShouldBeGreaterThan(first);
        var sandbox = await cluster.Cri(node).Runtime.PodSandboxStatusAsync(running.SandboxId, cts.Token);
        sandbox.RuntimeHandler.ShouldBe(Handler);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_container_created_with_a_prepared_checkpoint_continues_its_counter_on_the_containerd_1_7_node()
    {
        cluster.Info.Node(NodeB).ContainerdVersion.ShouldBe("1.7", "node-b stands for a runtime without restore through CRI");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        using var scratch = new ScratchDirectory();
        var (images, checkpointed) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);

        // The clone's own spec says "tick every 1000 s": a container started fresh would stay near 0; the restored
        // process keeps the checkpointed one's 20 ms and its count.
        var clone = Clone("rc-restored", intervalMs: 1_000_000);
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images, diff: tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "tmp/from-diff") { DataStream = new MemoryStream("diff applied"u8.ToArray()), Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite }));
        await using var _ = await RunAsync(NodeB, clone.Pod(id), cts.Token);

        var restored = await WaitForCountAboveAsync(NodeB, clone.Pod(id), checkpointed - 1, cts.Token);
        restored.ShouldBeGreaterThanOrEqualTo(checkpointed);
        (await WaitForCountAboveAsync(NodeB, clone.Pod(id), restored, cts.Token)).ShouldBeGreaterThan(restored, "the restored counter goes on");
        var fromDiff = await cluster.Runner(NodeB).ExecAsync(TestPods.Namespace, clone.Name, "counter", ["cat", "/tmp/from-diff"], TimeSpan.FromSeconds(10), cts.Token);
        fromDiff.Stdout.ShouldBe("diff applied", "the rootfs diff is applied before the restore");

        Directory.Exists(prepared).ShouldBeFalse("the staging is consumed once restored");
        var record = JsonSerializer.Deserialize(File.ReadAllBytes(PreparedLayout.RestoredRecordOf(PreparedRoot(NodeB), id)), RuntimeContractJson.Default.RestoredRecord)!;
        record.CheckpointId.ShouldBe(id);
        var container = (await cluster.Runner(NodeB).GetAsync(TestPods.Namespace, clone.Name, cts.Token))!.Containers.Single();
        record.ContainerId.ShouldBe(container.Id);
        record.RestoreSeconds.ShouldBeGreaterThan(0);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_lazy_restore_continues_the_counter_and_removes_the_staging_only_once_every_page_was_served()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        using var scratch = new ScratchDirectory();
        var (images, checkpointed) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);
        var clone = Clone("rc-lazy", intervalMs: 1_000_000);
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images);
        await using var _ = await RunAsync(NodeB, clone.Pod(id, lazy: true), cts.Token);

        var restoredRecord = JsonSerializer.Deserialize(File.ReadAllBytes(PreparedLayout.RestoredRecordOf(PreparedRoot(NodeB), id)), RuntimeContractJson.Default.RestoredRecord)!;
        restoredRecord.LazyPages.ShouldBeTrue("the annotation asked for lazy pages");
        File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeFalse("consumed at once: a second create cannot restore it again");
        var pages = await WaitForPagesRecordAsync(NodeB, id, cts.Token);
        pages.Failure.ShouldBeNull();
        pages.FilledAtUnixNanos.ShouldNotBeNull();
        // (A counter's few pages can all be served before `runc restore` has returned: no order between the two records.)
        Directory.Exists(prepared).ShouldBeFalse("the staging goes once the daemon served every page");

        var restored = await WaitForCountAboveAsync(NodeB, clone.Pod(id), checkpointed - 1, cts.Token);
        restored.ShouldBeGreaterThanOrEqualTo(checkpointed);
        (await WaitForCountAboveAsync(NodeB, clone.Pod(id), restored, cts.Token)).ShouldBeGreaterThan(restored, "the restored counter goes on");
    }

    /// <summary>
    /// The lazy-pages daemon is killed as soon as it listens, while the restore runs or the process is being filled:
    /// either the restore fails (the create fails with the reason and nothing runs), or, when it had already returned,
    /// the runtime kills the restored container (pages it never got would read as zeros) and records why. Either way
    /// nothing goes on with part of its memory missing, and the staging is left to the agent.
    /// (A daemon only stopped with SIGSTOP was tried first: the restore itself then waits for it, up to the supervisor's
    /// bound, because CRIU's restorer already faults on lazy pages.)
    /// </summary>
    [Fact(Timeout = 300_000)]
    public async Task The_lazy_pages_daemon_killed_mid_restore_or_fill_leaves_nothing_running_on_partial_memory()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(280));
        using var scratch = new ScratchDirectory();
        var (images, _) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);
        var clone = Clone("rc-lazy-kill", intervalMs: 1_000_000);
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images);
        var killer = KillLazyPagesDaemonOnceListeningAsync(id, cts.Token);
        PodMigrateException? refused = null;
        try
        {
            await cluster.Runner(NodeB).RunAsync(clone.Pod(id, lazy: true), cts.Token);
        }
        catch (PodMigrateException e)
        {
            refused = e;
        }
        await killer;

        if (refused is not null)
        {
            refused.Message.ShouldContain("podmigrate:");
            await ShouldNotRunAsync(NodeB, clone, cts.Token);
        }
        else
        {
            await using var _ = new PodCleanup(cluster.Runner(NodeB), clone.Pod(id, lazy: true));
            var pages = await WaitForPagesRecordAsync(NodeB, id, cts.Token);
            pages.FilledAtUnixNanos.ShouldBeNull();
            pages.Failure.ShouldNotBeNull().ShouldContain("was killed");
            while ((await cluster.Runner(NodeB).GetAsync(TestPods.Namespace, clone.Name, cts.Token))!.Containers.Single().State == "Running")
            {
                await Task.Delay(100, cts.Token);
            }
        }
        Directory.Exists(Path.Combine(prepared, PreparedLayout.ImagesDirectory)).ShouldBeTrue("a failed lazy restore leaves the staging to the agent");
    }

    /// <summary>Finds the lazy-pages daemon of checkpoint <paramref name="id"/> (its --images-dir names it), waits until it listens, kills it; returns its pid.</summary>
    private static async Task<int> KillLazyPagesDaemonOnceListeningAsync(string id, CancellationToken cancellationToken)
    {
        while (true)
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid))
                {
                    continue;
                }
                string cmdline;
                try
                {
                    cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    continue;
                }
                var args = cmdline.Split('\0');
                if (args.Contains("lazy-pages") && args.Any(a => a.Contains(id, StringComparison.Ordinal)) && !args.Contains("podmigrate-lazy-pages"))
                {
                    var work = args[Array.IndexOf(args, "--work-dir") + 1];
                    while (!File.Exists(Path.Combine(work, "lazy-pages.socket")))
                    {
                        await Task.Delay(1, cancellationToken);
                    }
                    Kill(pid, SigKill).ShouldBe(0, $"SIGKILL to the lazy-pages daemon {pid}");
                    return pid;
                }
            }
            await Task.Delay(1, cancellationToken);
        }
    }

    private const int SigKill = 9;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    private async Task<LazyPagesRecord> WaitForPagesRecordAsync(string node, string id, CancellationToken cancellationToken)
    {
        var path = PreparedLayout.PagesRecordOf(PreparedRoot(node), id);
        while (!File.Exists(path))
        {
            await Task.Delay(50, cancellationToken);
        }
        return JsonSerializer.Deserialize(File.ReadAllBytes(path), RuntimeContractJson.Default.LazyPagesRecord)!;
    }

    [Fact(Timeout = 180_000)]
    public async Task A_checkpoint_the_node_has_not_prepared_fails_the_create_with_the_reason_and_nothing_runs()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var clone = Clone("rc-unprepared");
        var id = NewCheckpointId();

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token));

        error.Message.ShouldContain($"checkpoint {id} is not prepared on this node");
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_checkpoint_sealed_for_another_pod_is_refused_and_stays_prepared()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var clone = Clone("rc-other");
        var other = Clone("rc-sealed-for");
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, other, images: null);

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token));

        error.Message.ShouldContain($"was prepared for {TestPods.Namespace}/{other.Name}");
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
        File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeTrue("a refused create leaves the staging to the agent");
    }

    [Fact(Timeout = 180_000)]
    public async Task A_restarted_container_starts_fresh_from_its_image()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var clone = Clone("rc-restart");
        var id = NewCheckpointId();
        // Sealed for this very pod: at restartCount 0 it would be restored (and fail: the images are empty).
        var prepared = Prepare(NodeB, id, clone, images: null);
        var pod = clone.Pod(id);
        var runner = cluster.Runner(NodeB);
        var cri = cluster.Cri(NodeB).Runtime;

        var sandboxConfig = PodCriConfig.BuildSandboxConfig(pod, 0, "api", DateTimeOffset.UtcNow);
        var sandboxId = await runner.RunSandboxAsync(sandboxConfig, Handler, cts.Token);
        try
        {
            var config = PodCriConfig.BuildContainerConfig(pod, pod.Spec.Containers[0], cluster.Image("counter"), restartCount: 1);
            var containerId = await cri.CreateContainerAsync(sandboxId, config, sandboxConfig, cts.Token);
            await cri.StartContainerAsync(containerId, cts.Token);

            // It runs, so it was created from its image: a restore from this staging's empty image directory fails.
            await WaitForCountAboveAsync(NodeB, pod, long.MinValue, cts.Token);
            File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeTrue("a restart does not consume the checkpoint");
            File.Exists(PreparedLayout.RestoredRecordOf(PreparedRoot(NodeB), id)).ShouldBeFalse();
        }
        finally
        {
            using var cleanup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await runner.RemoveAsync(TestPods.Namespace, clone.Name, TimeSpan.FromSeconds(2), cleanup.Token);
        }
    }

    [Fact(Timeout = 180_000)]
    public async Task A_rootfs_diff_with_a_symlink_out_of_the_root_is_refused()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var clone = Clone("rc-symlink");
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images: null, diff: tar =>
            tar.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "tmp/escape") { LinkName = "../../../../../../etc/shadow" }));

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token));

        error.Message.ShouldContain("entry 'tmp/escape' is a symlink to '../../../../../../etc/shadow', which leads out of the root file system");
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
        File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeTrue();
    }

    [Fact(Timeout = 180_000)]
    public async Task A_mount_the_checkpointed_process_had_that_the_new_spec_lacks_is_refused_naming_it()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        var clone = Clone("rc-mount");
        var id = NewCheckpointId();
        Prepare(NodeB, id, clone, images: null, mounts: ["/proc", "/etc/hosts", "/var/lib/data"]);

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token));

        error.Message.ShouldContain("had a mount at /var/lib/data, which the new container's spec lacks");
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
    }

    /// <summary>
    /// Root with supplemental group 3000, drop ALL + NET_BIND_SERVICE, allowPrivilegeEscalation false, RuntimeDefault
    /// seccomp: the restored process holds exactly that. (A source running as another uid cannot be dumped here: CRIU
    /// reads its rlimits with prlimit, which root without CAP_SYS_RESOURCE, as on these VMs, may only do for its own uid
    /// and gid. The uid rule is covered by the refusal below and the unit tests.)
    /// </summary>
    [Fact(Timeout = 240_000)]
    public async Task The_restored_process_has_the_target_pods_groups_capabilities_no_new_privs_and_seccomp()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        using var scratch = new ScratchDirectory();
        var (images, checkpointed) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token, pod => Restricted(pod, user: 0, group: 0));
        var thread = CheckpointedCredentials.Read(images).ShouldHaveSingleItem("the counter is one thread");
        (thread.Uid, thread.Gid, thread.CapBounding, thread.CapEffective, thread.NoNewPrivileges, thread.SeccompMode)
            .ShouldBe((0u, 0u, NetBindService, NetBindService, (bool?)true, "filter"), "the images record what the source ran with");
        thread.Groups.ShouldContain(3000u);

        var clone = Clone("rc-restricted");
        Restricted(clone.Template, user: 0, group: 0);
        var id = NewCheckpointId();
        Prepare(NodeB, id, clone, images);
        await using var _ = await RunAsync(NodeB, clone.Pod(id), cts.Token);

        (await WaitForCountAboveAsync(NodeB, clone.Pod(id), checkpointed - 1, cts.Token)).ShouldBeGreaterThanOrEqualTo(checkpointed);
        var status = await cluster.Runner(NodeB).ExecAsync(TestPods.Namespace, clone.Name, "counter", ["cat", "/proc/1/status"], TimeSpan.FromSeconds(10), cts.Token);
        var fields = status.Stdout.Split('\n').Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => string.Join(' ', p[1].Split((char[])['\t', ' '], StringSplitOptions.RemoveEmptyEntries)));
        fields["Name"].ShouldBe("counter", "pid 1 of the clone is the restored counter");
        fields["Uid"].ShouldBe("0 0 0 0");
        fields["Groups"].Split(' ').ShouldContain("3000");
        fields["CapEff"].ShouldBe(NetBindService.ToString("x16", CultureInfo.InvariantCulture));
        fields["CapPrm"].ShouldBe(NetBindService.ToString("x16", CultureInfo.InvariantCulture));
        fields["CapBnd"].ShouldBe(NetBindService.ToString("x16", CultureInfo.InvariantCulture));
        fields["NoNewPrivs"].ShouldBe("1");
        fields["Seccomp"].ShouldBe("2");
    }

    [Fact(Timeout = 240_000)]
    public async Task A_root_checkpoint_is_refused_into_a_clone_whose_spec_drops_its_capabilities_and_user_and_nothing_runs()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(220));
        using var scratch = new ScratchDirectory();
        var (images, _) = await CheckpointCounterAsync(NodeB, scratch.Path, cts.Token);
        var clone = Clone("rc-escape");
        Restricted(clone.Template, user: 1000, group: 3000);
        var id = NewCheckpointId();
        var prepared = Prepare(NodeB, id, clone, images);

        var error = await Should.ThrowAsync<PodMigrateException>(() => cluster.Runner(NodeB).RunAsync(clone.Pod(id), cts.Token));

        error.Message.ShouldContain($"refusing to restore checkpoint {id}: the restored process would hold more than the new container's spec grants");
        error.Message.ShouldContain("effective capabilities CAP_CHOWN");
        error.Message.ShouldContain("uid 0 where the spec runs as 1000 without CAP_SETUID");
        error.Message.ShouldContain("no_new_privs is off");
        error.Message.ShouldContain("without a seccomp filter");
        await ShouldNotRunAsync(NodeB, clone, cts.Token);
        File.Exists(Path.Combine(prepared, PreparedLayout.SealFile)).ShouldBeTrue("a refused create leaves the staging to the agent");
    }

    private const ulong NetBindService = 1UL << 10;

    /// <summary>runAsUser, runAsGroup, supplemental group 3000, drop ALL + NET_BIND_SERVICE, allowPrivilegeEscalation false, seccomp RuntimeDefault.</summary>
    private static void Restricted(V1Pod pod, long user, long group)
    {
        pod.Spec.SecurityContext = new V1PodSecurityContext
        {
            RunAsUser = user,
            RunAsGroup = group,
            SupplementalGroups = [3000],
            SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" },
        };
        pod.Spec.Containers[0].SecurityContext = new V1SecurityContext
        {
            AllowPrivilegeEscalation = false,
            Capabilities = new V1Capabilities { Drop = ["ALL"], Add = ["NET_BIND_SERVICE"] },
        };
    }

    /// <summary>
    /// Runs a 20 ms counter on <paramref name="node"/> and checkpoints it with Tasks.Checkpoint into a fresh dir, leaving
    /// it running (with exit, containerd 1.7's CRI still saw the container running and would not remove it).
    /// </summary>
    private async Task<(string Images, long Count)> CheckpointCounterAsync(string node, string scratch, CancellationToken cancellationToken, Action<V1Pod>? configure = null)
    {
        var source = TestPods.Counter(cluster.Image("counter"), "rc-source", intervalMs: 20);
        configure?.Invoke(source);
        await using var _ = await RunAsync(node, source, cancellationToken);
        var started = (await cluster.Runner(node).GetAsync(TestPods.Namespace, source.Metadata.Name!, cancellationToken))!;
        var count = await WaitForCountAboveAsync(node, source, 50, cancellationToken);
        var images = Directory.CreateDirectory(Path.Combine(scratch, "images")).FullName;
        var work = Directory.CreateDirectory(Path.Combine(scratch, "work")).FullName;
        using var connection = ContainerdConnection.Open(cluster.Info.Node(node).ContainerdSocket, "k8s.io");
        await new ContainerdTasks(connection).CheckpointAsync(started.Containers.Single().Id, new TaskCheckpointOptions(images, work), cancellationToken);
        return (images, count);
    }

    /// <summary>
    /// Lays a checkpoint out as the agent does (0700 directory, CRIU images, rootfs diff, the seal last) and returns
    /// the directory. Without <paramref name="images"/> the image directory is empty (the test fails before CRIU).
    /// </summary>
    private string Prepare(string node, string id, CloneSpec sealedFor, string? images, Action<TarWriter>? diff = null, IReadOnlyList<string>? mounts = null)
    {
        // The agent reads what CRIU will restore from the images; without images, a root thread holding nothing.
        IReadOnlyList<CheckpointedThread> threads = images is null
            ? [new CheckpointedThread { Pid = 1, Tid = 1, Command = "counter" }]
            : CheckpointedCredentials.Read(images);
        var dir = PreparedLayout.DirectoryOf(PreparedRoot(node), id);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var target = Path.Combine(dir, PreparedLayout.ImagesDirectory);
        Directory.CreateDirectory(target);
        foreach (var file in images is null ? [] : Directory.GetFiles(images))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
        if (diff is not null)
        {
            using var stream = File.Create(Path.Combine(dir, PreparedLayout.RootFsDiffTar));
            using var tar = new TarWriter(stream, TarEntryFormat.Pax);
            diff(tar);
        }
        var seal = new PreparedCheckpoint
        {
            CheckpointId = id,
            PodNamespace = TestPods.Namespace,
            PodName = sealedFor.Name,
            PodUid = sealedFor.Uid,
            ContainerName = "counter",
            MountDestinations = mounts ?? ["/proc", "/dev", "/sys", "/dev/shm", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"],
            Threads = threads,
            PreparedAt = DateTimeOffset.UtcNow,
        };
        File.WriteAllBytes(Path.Combine(dir, PreparedLayout.SealFile), JsonSerializer.SerializeToUtf8Bytes(seal, RuntimeContractJson.Default.PreparedCheckpoint));
        return dir;
    }

    private string PreparedRoot(string node)
        => cluster.Info.Node(node).PreparedDir ?? throw new InvalidOperationException($"cluster.json has no preparedDir for {node}: an older scripts/cluster.sh made it");

    private static string NewCheckpointId() => "rt-" + Guid.NewGuid().ToString("N")[..16];

    private CloneSpec Clone(string prefix, int intervalMs = 100) => new(TestPods.Counter(cluster.Image("counter"), prefix, intervalMs));

    private static V1Pod UnderRuntimeClass(V1Pod pod)
    {
        pod.Spec.RuntimeClassName = Handler;
        return pod;
    }

    /// <summary>A clone pod: the runtime class and the restore annotation on a fresh counter pod (name and uid fixed).</summary>
    private sealed class CloneSpec(V1Pod template)
    {
        public V1Pod Template => template;

        public string Name => template.Metadata.Name!;

        public string Uid => template.Metadata.Uid!;

        public V1Pod Pod(string checkpointId, bool lazy = false)
        {
            var pod = UnderRuntimeClass(template);
            pod.Metadata.Annotations![RestoreAnnotations.Checkpoint] = checkpointId;
            if (lazy)
            {
                pod.Metadata.Annotations[RestoreAnnotations.Pages] = RestoreAnnotations.PagesLazy;
            }
            return pod;
        }
    }

    private async Task ShouldNotRunAsync(string node, CloneSpec clone, CancellationToken cancellationToken)
    {
        (await cluster.Runner(node).GetAsync(TestPods.Namespace, clone.Name, cancellationToken)).ShouldBeNull("a refused create leaves no pod");
        var sandboxes = await cluster.Cri(node).Runtime.ListPodSandboxAsync(new global::Runtime.V1.PodSandboxFilter(), cancellationToken);
        sandboxes.ShouldNotContain(s => s.Metadata.Name == clone.Name);
    }

    private async Task<PodCleanup> RunAsync(string node, V1Pod pod, CancellationToken cancellationToken)
    {
        await cluster.Runner(node).RunAsync(pod, cancellationToken);
        return new PodCleanup(cluster.Runner(node), pod);
    }

    /// <summary>Polls with backoff (bounded by the token) until the counter passes <paramref name="floor"/>.</summary>
    private async Task<long> WaitForCountAboveAsync(string node, V1Pod pod, long floor, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var result = await cluster.Runner(node).ExecAsync(TestPods.Namespace, pod.Metadata.Name!, "counter", ["cat", "/tmp/count"], TimeSpan.FromSeconds(10), cancellationToken);
            if (result.ExitCode == 0 && long.TryParse(result.Stdout.Trim(), CultureInfo.InvariantCulture, out var value) && value > floor)
            {
                return value;
            }
            await Task.Delay(delay, cancellationToken);
            delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 1000));
        }
    }

    private sealed class PodCleanup(KubeletPodRunner runner, V1Pod pod) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await runner.RemoveAsync(TestPods.Namespace, pod.Metadata.Name!, TimeSpan.FromSeconds(2), cts.Token);
        }
    }

    private sealed class ScratchDirectory : IDisposable
    {
        public string Path { get; } = Directory.CreateDirectory(System.IO.Path.Combine("/dev/shm", "pm-rt-" + Guid.NewGuid().ToString("N")[..8])).FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
