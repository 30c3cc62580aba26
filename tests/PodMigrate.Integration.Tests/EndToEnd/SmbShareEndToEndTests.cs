using k8s.Models;
using PodMigrate.Controller.Migrations;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;
using PodMigrate.Integration.Tests.Cluster;
using PodMigrate.Kube.Models;
using PodMigrate.TestKit.Cluster;
using PodMigrate.TestKit.Share;
using Xunit.Abstractions;
using static PodMigrate.Integration.Tests.EndToEnd.MigrationWorld;

namespace PodMigrate.Integration.Tests.EndToEnd;

/// <summary>One real SMB share for the class: Samba on loopback (a 256 MiB tmpfs behind it), smbnetfs mounts for node-a and node-b.</summary>
public sealed class EndToEndSmbShare : IAsyncLifetime
{
    public SmbShare Share { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        Share = await SmbShare.StartAsync([NodeA, NodeB], "256M", timeout.Token);
    }

    public async Task DisposeAsync() => await Share.DisposeAsync();
}

/// <summary>
/// PodMigrations whose agents share checkpoints through a real SMB server, each through its own node's FUSE mount (as
/// `cluster.sh up --share smb` runs them): a migration, a clone, a corrupt archive refused, a full share and the server
/// stopped while the checkpoint is written. The share is inspected and damaged on the server's side.
/// </summary>
[Collection(SharedLocalCluster.Name)]
[Trait("Category", "EndToEnd")]
[Trait("Requires", "Root")]
[Trait("Requires", "Criu")]
[Trait("Requires", "Samba")]
public sealed class SmbShareEndToEndTests(LocalCluster cluster, EndToEndSmbShare smb, ITestOutputHelper output) : IClassFixture<EndToEndSmbShare>
{
    private static readonly TimeSpan TestBudget = TimeSpan.FromSeconds(150);

    [Fact(Timeout = 180_000)]
    public async Task Migrate_through_the_smb_share_moves_the_counter_with_its_state()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, smb: smb.Share);
        var source = await world.RunCounterAsync("smb-move", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("smb-move", source, NodeB, MigrationMode.Migrate, cts.Token, retainCheckpoint: true);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "smb-move", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        clone.Spec.NodeName.ShouldBe(NodeB);
        (await world.ReadCounterAsync(clone, cts.Token)).ShouldBeGreaterThanOrEqualTo(before);
        await world.WaitForPodGoneAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        world.CheckpointsOnShare().ShouldBe([status.CheckpointId!]);
        // On the server's disk the archive is 0600 (Samba's create mask), whatever mode the clients show.
        var archive = Directory.GetFiles(Path.Combine(world.CheckpointsDirectory, status.CheckpointId!), "archive.*").ShouldHaveSingleItem();
        DurableFileSystem.GetMode(archive).ShouldBe(DurableFileSystem.PrivateFileMode);
        await DeleteCheckpointsAsync(world);
    }

    [Fact(Timeout = 180_000)]
    public async Task Clone_through_the_smb_share_keeps_the_source_counting()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, smb: smb.Share);
        var source = await world.RunCounterAsync("smb-clone", NodeA, cts.Token);
        var before = await world.WaitForCounterAboveAsync(source, 10, cts.Token);

        await world.CreateMigrationAsync("smb-copy", source, NodeB, MigrationMode.Clone, cts.Token);
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "smb-copy", cts.Token);

        var status = done.Status!;
        status.Phase.ShouldBe(MigrationPhase.Succeeded, status.Message);
        var clone = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, status.ClonePod!, cts.Token);
        var cloneCount = await world.ReadCounterAsync(clone, cts.Token);
        cloneCount.ShouldBeGreaterThanOrEqualTo(before);
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        sourceNow.Metadata.Uid.ShouldBe(source.Metadata.Uid);
        await world.WaitForCounterAboveAsync(sourceNow, cloneCount, cts.Token);
        world.CheckpointsOnShare().ShouldBeEmpty("a checkpoint not retained is deleted once the clone runs");
    }

    [Fact(Timeout = 180_000)]
    public async Task A_corrupt_archive_on_the_smb_server_is_refused_and_the_migration_rolls_back()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, smb: smb.Share);
        var source = await world.RunCounterAsync("smb-corrupt", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        await world.CreateMigrationAsync("smb-corrupt", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "smb-corrupt", MigrationPhase.Checkpointing, cts.Token);
        Signal("STOP", world.Agent(NodeB).Pid);
        try
        {
            var restoring = await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "smb-corrupt", MigrationPhase.Restoring, cts.Token);
            restoring.Status!.Phase.ShouldBe(MigrationPhase.Restoring, restoring.Status.Message);
            FlipOneByteOfTheArchive(Path.Combine(world.CheckpointsDirectory, restoring.Status.CheckpointId!));
        }
        finally
        {
            Signal("CONT", world.Agent(NodeB).Pid);
        }
        var done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "smb-corrupt", cts.Token);

        done.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, done.Status.Message);
        done.Status.RollbackReason.ShouldBe("RestoreFailed");
        (await world.Nodes.EmulatedSandboxesAsync(NodeB, cts.Token)).ShouldBeEmpty("nothing starts on the target");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        var value = await world.ReadCounterAsync(sourceNow, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, value + 5, cts.Token);
        await DeleteCheckpointsAsync(world);
    }

    [Fact(Timeout = 180_000)]
    public async Task A_full_smb_share_rolls_back_with_nothing_published_and_the_source_counting()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, smb: smb.Share);
        var source = await world.RunCounterAsync("smb-full", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);
        // The tmpfs behind Samba filled to within one page (the counter's compressed archive is a few tens of KiB): the
        // clients cannot tell (statvfs says 0 of 0), the write finds out.
        var filler = Path.Combine(smb.Share.ServerPath, "filler");
        var free = DurableFileSystem.TryGetAvailableBytes(smb.Share.ServerPath).ShouldNotBeNull();
        await ProcessRunner.RunCheckedAsync(new ProcessSpec("/usr/bin/fallocate", ["-l", (free - 4096).ToString(System.Globalization.CultureInfo.InvariantCulture), filler]), cts.Token);
        PodMigration done;
        try
        {
            await world.CreateMigrationAsync("smb-full", source, NodeB, MigrationMode.Migrate, cts.Token);
            done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "smb-full", cts.Token);
        }
        finally
        {
            File.Delete(filler);
        }

        done.Status!.Phase.ShouldBe(MigrationPhase.RolledBack, done.Status.Message);
        done.Status.RollbackReason.ShouldBe("CheckpointFailed");
        done.Status.Message.ShouldNotBeNull().ShouldContain("full");
        world.CheckpointsOnShare().ShouldBeEmpty("nothing is published on a full share");
        Directory.EnumerateFileSystemEntries(Path.Combine(world.CheckpointsDirectory, ".staging")).ShouldBeEmpty("the partial archive is removed");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        sourceNow.Metadata.Uid.ShouldBe(source.Metadata.Uid);
        var value = await world.ReadCounterAsync(sourceNow, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, value + 5, cts.Token);
    }

    [Fact(Timeout = 180_000)]
    public async Task The_smb_server_stopped_during_the_checkpoint_fails_it_within_a_bound_with_nothing_published()
    {
        using var cts = new CancellationTokenSource(TestBudget);
        await using var world = await MigrationWorld.StartAsync(cluster, output, cts.Token, smb: smb.Share);
        var source = await world.RunCounterAsync("smb-down", NodeA, cts.Token);
        await world.WaitForCounterAboveAsync(source, 5, cts.Token);

        await world.CreateMigrationAsync("smb-down", source, NodeB, MigrationMode.Migrate, cts.Token);
        await world.WaitForPhaseAsync(source.Metadata.NamespaceProperty!, "smb-down", MigrationPhase.Checkpointing, cts.Token);
        PodMigration done;
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            await smb.Share.StopServerAsync(cts.Token);
            done = await world.WaitForTerminalAsync(source.Metadata.NamespaceProperty!, "smb-down", cts.Token);
            stopped.Stop();
        }
        finally
        {
            await smb.Share.StartServerAsync(CancellationToken.None);
        }

        output.WriteLine($"terminal {stopped.Elapsed.TotalSeconds:F1} s after the server stopped: {done.Status!.Phase} {done.Status.RollbackReason}: {done.Status.Message}");
        done.Status.Phase.ShouldBe(MigrationPhase.RolledBack, done.Status.Message);
        stopped.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(90), "the share's client gives up within its timeout; the migration does not hang");
        var sourceNow = await world.WaitForPodReadyAsync(source.Metadata.NamespaceProperty!, source.Metadata.Name!, cts.Token);
        sourceNow.Metadata.Uid.ShouldBe(source.Metadata.Uid);
        var value = await world.WaitForCounterAboveAsync(sourceNow, -1, cts.Token);
        await world.WaitForCounterAboveAsync(sourceNow, value + 5, cts.Token);
        world.CheckpointsOnShare().ShouldBeEmpty("nothing was published");
        (await world.Nodes.EmulatedSandboxesAsync(NodeB, cts.Token)).ShouldBeEmpty("nothing starts on the target");
    }

    /// <summary>Retained checkpoints go with the test (the share is the class's, the next test starts from an empty one).</summary>
    private static Task DeleteCheckpointsAsync(MigrationWorld world)
    {
        foreach (var id in world.CheckpointsOnShare())
        {
            Directory.Delete(Path.Combine(world.CheckpointsDirectory, id), recursive: true);
        }
        return Task.CompletedTask;
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        kill.ExitCode.ShouldBe(0, $"kill -{signal} {pid}");
    }

    /// <summary>One flipped bit in the middle of the archive, written on the server's side.</summary>
    private static void FlipOneByteOfTheArchive(string checkpointDirectory)
    {
        var archive = new DirectoryInfo(checkpointDirectory).GetFiles("archive.*").Single();
        using var file = new FileStream(archive.FullName, FileMode.Open, FileAccess.ReadWrite);
        file.Position = archive.Length / 2;
        var b = file.ReadByte();
        file.Position = archive.Length / 2;
        file.WriteByte((byte)(b ^ 0x01));
    }
}
