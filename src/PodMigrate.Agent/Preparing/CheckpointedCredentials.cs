using System.Globalization;
using Criu.Images;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Criu;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Agent.Preparing;

/// <summary>
/// The credentials CRIU restores to each thread of a checkpoint (pstree.img, then core-&lt;tid&gt;.img's thread_core.creds
/// and seccomp mode): what the restored process tree will hold, whatever the new container's spec says.
/// </summary>
internal static class CheckpointedCredentials
{
    public static IReadOnlyList<CheckpointedThread> Read(string imagesDirectory)
    {
        var tasks = CriuImageFile.ReadEntries(Path.Combine(imagesDirectory, "pstree.img"), CriuImageFile.PstreeMagic, pstree_entry.Parser);
        if (tasks.Count == 0)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, "CRIU image pstree.img lists no process");
        }
        var threads = new List<CheckpointedThread>();
        foreach (var task in tasks)
        {
            var tids = task.Threads.Count > 0 ? task.Threads : [task.Pid];
            foreach (var tid in tids)
            {
                threads.Add(Thread((int)task.Pid, (int)tid, imagesDirectory));
            }
        }
        return threads;
    }

    private static CheckpointedThread Thread(int pid, int tid, string imagesDirectory)
    {
        var file = $"core-{tid.ToString(CultureInfo.InvariantCulture)}.img";
        var core = CriuImageFile.ReadEntries(Path.Combine(imagesDirectory, file), CriuImageFile.CoreMagic, core_entry.Parser) switch
        {
            [var only] => only,
            var entries => throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {file} has {entries.Count} entries, not one"),
        };
        var creds = core.ThreadCore?.Creds
            ?? throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {file} records no credentials for thread {tid}");
        // Seccomp is per thread since CRIU 3.x; older images kept one mode per task.
        var seccomp = core.ThreadCore.HasSeccompMode ? core.ThreadCore.SeccompMode
            : core.Tc?.HasOldSeccompMode == true ? core.Tc.OldSeccompMode : seccomp_mode.Disabled;
        return new CheckpointedThread
        {
            Pid = pid,
            Tid = tid,
            Command = core.ThreadCore.HasComm ? core.ThreadCore.Comm : core.Tc?.Comm ?? "",
            Uid = creds.Uid,
            EffectiveUid = creds.Euid,
            SavedUid = creds.Suid,
            FsUid = creds.Fsuid,
            Gid = creds.Gid,
            EffectiveGid = creds.Egid,
            SavedGid = creds.Sgid,
            FsGid = creds.Fsgid,
            Groups = [.. creds.Groups],
            CapInheritable = Mask(creds.CapInh),
            CapPermitted = Mask(creds.CapPrm),
            CapEffective = Mask(creds.CapEff),
            CapBounding = Mask(creds.CapBnd),
            CapAmbient = Mask(creds.CapAmb),
            // CRIU restores no_new_privs only when its image says 1: absent (older CRIU, or off) restores it off.
            NoNewPrivileges = creds.NoNewPrivs != 0,
            SeccompMode = seccomp switch
            {
                seccomp_mode.Strict => "strict",
                seccomp_mode.Filter => "filter",
                _ => "disabled",
            },
        };
    }

    /// <summary>CRIU keeps a capability set as 32-bit words, lowest first (kernel_cap_t).</summary>
    private static ulong Mask(Google.Protobuf.Collections.RepeatedField<uint> words) => words.Count switch
    {
        0 => 0,
        1 => words[0],
        _ => words[0] | ((ulong)words[1] << 32),
    };
}
