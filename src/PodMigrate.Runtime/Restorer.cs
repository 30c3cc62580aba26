using System.Diagnostics;
using System.Text;
using System.Text.Json;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime;

/// <summary>
/// Turns the create of a clone's container into `runc restore --detach` of the checkpoint this node's agent prepared,
/// and the `start` that follows into nothing. The new bundle's config.json is the spec: nothing from the checkpoint's
/// spec.dump or config.dump is read.
/// </summary>
internal sealed class Restorer(Runc runc, RuncCommandLine line, RuntimeLog log, string preparedRoot)
{
    /// <summary>In the bundle while a restored container waits for its `start` (which then does nothing).</summary>
    public const string RestoredMarker = "podmigrate-restored";

    /// <summary>CRIU's work directory (restore.log) in the bundle.</summary>
    public const string WorkDirectory = "podmigrate-criu-work";

    /// <summary>In the prepared directory while a create consumes it (created exclusively: one consumer).</summary>
    public const string ClaimFile = PreparedLayout.ClaimFile;

    private static ReadOnlySpan<byte> AnnotationBytes => "podmigrate.io/restore-checkpoint"u8;

    /// <summary>Handles the create when it is a restore; false: hand it to runc unchanged.</summary>
    public bool TryCreate(CreateArgs create)
    {
        byte[] config;
        try
        {
            config = File.ReadAllBytes(Path.Combine(create.Bundle, OciSpec.ConfigFile));
        }
        catch (IOException)
        {
            return false; // runc reports it
        }
        if (config.AsSpan().IndexOf(AnnotationBytes) < 0)
        {
            return false; // the common case: no JSON parsed
        }
        var spec = OciSpec.Parse(config);
        var action = CreateAction.Decide(spec);
        if (action is CreateAction.PassThrough pass)
        {
            log.Info($"create {create.Id}: runc create ({pass.Reason})");
            return false;
        }
        var restore = (CreateAction.Restore)action;
        return Restore(create, spec, restore);
    }

    private bool Restore(CreateArgs create, OciSpec spec, CreateAction.Restore restore)
    {
        var started = Stopwatch.StartNew();
        var id = restore.CheckpointId;
        var dir = PreparedLayout.DirectoryOf(preparedRoot, id);
        var sealPath = Path.Combine(dir, PreparedLayout.SealFile);
        if (!File.Exists(sealPath))
        {
            if (File.Exists(PreparedLayout.RestoredRecordOf(preparedRoot, id)))
            {
                log.Info($"create {create.Id}: checkpoint {id} was already restored once: runc create from the image");
                return false;
            }
            throw new RuntimeException($"podmigrate: checkpoint {id} is not prepared on this node (no {sealPath}); nothing was started");
        }
        if (create.PreserveFds)
        {
            throw new RuntimeException($"podmigrate: create {create.Id}: --preserve-fds cannot be restored");
        }
        PreparedCheckpoint seal;
        using (var s = File.OpenRead(sealPath))
        {
            seal = JsonSerializer.Deserialize(s, RuntimeContractJson.Default.PreparedCheckpoint)
                ?? throw new RuntimeException($"podmigrate: {sealPath} is empty");
        }
        if (seal.FormatVersion != PreparedCheckpoint.CurrentFormatVersion || seal.CheckpointId != id)
        {
            throw new RuntimeException($"podmigrate: {sealPath} is not the seal of checkpoint {id} (format {seal.FormatVersion}, id {seal.CheckpointId})");
        }
        if (restore.Container.Mismatch(seal) is { } mismatch)
        {
            throw new RuntimeException($"podmigrate: refusing to restore: {mismatch}");
        }
        var missing = ContainerIdentity.MissingMounts(seal, spec);
        if (missing.Count > 0)
        {
            throw new RuntimeException($"podmigrate: refusing to restore checkpoint {id}: the checkpointed process had a mount at {string.Join(", ", missing)}, which the new container's spec lacks");
        }
        var excess = CredentialCheck.Excess(seal.Threads, spec.Grant);
        if (excess.Count > 0)
        {
            throw new RuntimeException($"podmigrate: refusing to restore checkpoint {id}: the restored process would hold more than the new container's spec grants: {string.Join(" | ", excess)}");
        }
        var images = Path.Combine(dir, PreparedLayout.ImagesDirectory);
        if (!Directory.Exists(images))
        {
            throw new RuntimeException($"podmigrate: checkpoint {id} is sealed but has no {images}");
        }

        var claim = Path.Combine(dir, ClaimFile);
        Claim(claim, id, create.Id);
        var succeeded = false;
        System.Diagnostics.Process? supervisor = null;
        try
        {
            var rootfs = spec.RootFsOf(create.Bundle);
            var diff = Path.Combine(dir, PreparedLayout.RootFsDiffTar);
            var entries = 0;
            if (File.Exists(diff))
            {
                using var tar = File.OpenRead(diff);
                entries = RootFsDiff.ApplyTar(rootfs, tar);
            }
            var deletedFile = Path.Combine(dir, PreparedLayout.DeletedFilesFile);
            var deleted = 0;
            if (File.Exists(deletedFile))
            {
                using var d = File.OpenRead(deletedFile);
                deleted = RootFsDiff.ApplyDeletions(rootfs, d);
            }
            log.Info($"create {create.Id}: restoring checkpoint {id} into {restore.Container} (rootfs diff: {entries} entries, {deleted} deleted)");

            var work = Path.Combine(create.Bundle, WorkDirectory);
            Directory.CreateDirectory(work);
            var prepared = started.Elapsed;
            if (restore.LazyPages)
            {
                // The daemon serves the pages from this verified staging (never the share) and listens in the work dir.
                supervisor = LazyPagesSupervisor.Start(new LazyPagesJob
                {
                    CheckpointId = id,
                    PreparedRoot = preparedRoot,
                    Staging = dir,
                    Work = work,
                    ContainerId = create.Id,
                    Runc = runc.Path,
                    RuncGlobalArgs = line.GlobalArgs,
                    Criu = line.Criu,
                    Log = line.Log,
                    LogFormat = line.LogFormat,
                    TimeoutSeconds = LazyPagesSupervisor.DefaultTimeout.TotalSeconds,
                });
            }
            var listening = started.Elapsed;
            var exit = runc.Run(line.RestoreArgs(create, images, work, restore.LazyPages));
            var restoredAt = DateTimeOffset.UtcNow;
            var returned = started.Elapsed;
            if (exit != 0)
            {
                // runc normally removes a container whose restore failed; make sure nothing is left running.
                runc.Run([.. line.GlobalArgs, "delete", "--force", create.Id]);
                throw new RuntimeException($"podmigrate: runc restore of checkpoint {id} into {create.Id} failed (exit {exit}); CRIU: {CriuLogTail(work)}"
                    + (supervisor is null ? "" : $"; lazy pages: {LazyPagesSupervisor.LogTail(Path.Combine(work, LazyPagesSupervisor.DaemonLog))}"));
            }
            File.WriteAllText(Path.Combine(create.Bundle, RestoredMarker), id);
            if (supervisor is not null)
            {
                // Consumed: a second create finds no seal (the restore record makes it a plain runc create), while the
                // images stay for the daemon. The claim passes to the supervisor, which removes the staging when done,
                // and tells the agent's sweep the staging is in use.
                File.Delete(sealPath);
                File.WriteAllText(claim, $"{supervisor.Id} {create.Id}");
            }
            var record = new RestoredRecord
            {
                CheckpointId = id,
                ContainerId = create.Id,
                RestoredAtUnixNanos = (restoredAt - DateTimeOffset.UnixEpoch).Ticks * 100,
                RestoreSeconds = started.Elapsed.TotalSeconds,
                LazyPages = supervisor is not null,
            };
            WriteAtomically(PreparedLayout.RestoredRecordOf(preparedRoot, id),
                JsonSerializer.SerializeToUtf8Bytes(record, RuntimeContractJson.Default.RestoredRecord));
            succeeded = true;
            log.Info($"create {create.Id}: restored checkpoint {id} in {started.Elapsed.TotalSeconds:F3} s (checks and rootfs diff {prepared.TotalSeconds:F3} s, "
                + $"{(supervisor is null ? "" : $"lazy-pages daemon listening {(listening - prepared).TotalSeconds:F3} s, ")}runc restore {(returned - listening).TotalSeconds:F3} s)"
                + (supervisor is null ? "" : $"; lazy pages: supervisor {supervisor.Id} serves the rest from the staging"));
        }
        finally
        {
            if (succeeded && supervisor is null)
            {
                TryRemove(dir); // one-shot: the staging is consumed
            }
            else if (!succeeded)
            {
                if (supervisor is not null)
                {
                    LazyPagesSupervisor.Stop(supervisor); // the daemon with it; nothing was restored
                    File.Delete(PreparedLayout.PagesRecordOf(preparedRoot, id));
                }
                File.Delete(claim); // the agent cleans the staging up
            }
            supervisor?.Dispose();
        }
        return true;
    }

    /// <summary>
    /// Takes the staging for this create: the claim file, created exclusively, holds "pid container-id". A claim whose
    /// process is gone (a runtime killed mid-restore: no finally ran) is stale and taken over, so the kubelet's retry of
    /// the create restores instead of being refused until the agent cleans up.
    /// </summary>
    private void Claim(string claim, string checkpointId, string containerId)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var c = new FileStream(claim, FileMode.CreateNew, FileAccess.Write);
                c.Write(Encoding.UTF8.GetBytes($"{Environment.ProcessId} {containerId}"));
                return;
            }
            catch (IOException e) when (File.Exists(claim))
            {
                var holder = SafeRead(claim);
                var pid = holder.Split(' ', 2)[0];
                if (attempt == 0 && int.TryParse(pid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var p)
                    && !Directory.Exists($"/proc/{p}"))
                {
                    log.Info($"checkpoint {checkpointId}: taking over the claim of a runtime that is gone ({holder})");
                    File.Delete(claim);
                    continue;
                }
                throw new RuntimeException($"podmigrate: checkpoint {checkpointId} is already being restored (claim: {holder})", e);
            }
        }
    }

    /// <summary>The `start` after a restore: the process already runs, so nothing is started. False: hand it to runc.</summary>
    public bool TryStart(string containerId)
    {
        var bundle = BundleOf(containerId);
        if (bundle is null)
        {
            return false;
        }
        var marker = Path.Combine(bundle, RestoredMarker);
        if (!File.Exists(marker))
        {
            return false;
        }
        File.Delete(marker);
        log.Info($"start {containerId}: restored by create, already running");
        return true;
    }

    /// <summary>The bundle runc recorded for a container (libcontainer's state.json keeps it as the label "bundle=…").</summary>
    private string? BundleOf(string containerId)
    {
        if (!CreateAction.IsValidCheckpointId(containerId))
        {
            return null;
        }
        var state = Path.Combine(line.Root ?? "/run/runc", containerId, "state.json");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(state));
            if (doc.RootElement.TryGetProperty("config", out var config) && config.TryGetProperty("labels", out var labels)
                && labels.ValueKind == JsonValueKind.Array)
            {
                foreach (var label in labels.EnumerateArray())
                {
                    if (label.GetString() is { } l && l.StartsWith("bundle=", StringComparison.Ordinal))
                    {
                        return l["bundle=".Length..];
                    }
                }
            }
        }
        catch (IOException)
        {
        }
        catch (JsonException)
        {
        }
        return null;
    }

    private static string CriuLogTail(string work)
    {
        var restoreLog = Path.Combine(work, "restore.log");
        if (!File.Exists(restoreLog))
        {
            return $"no {restoreLog}";
        }
        var lines = File.ReadAllLines(restoreLog);
        var errors = lines.Where(l => l.Contains("Error", StringComparison.Ordinal)).TakeLast(3).ToArray();
        return string.Join(" | ", errors.Length > 0 ? errors : lines.TakeLast(3)) + $" (log: {restoreLog})";
    }

    private static string SafeRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private void TryRemove(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException e)
        {
            log.Info($"could not remove the consumed staging {dir}: {e.Message}");
        }
    }

    internal static void WriteAtomically(string path, byte[] content)
    {
        var temp = path + ".tmp";
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            f.Write(content);
            f.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
