using System.Globalization;
using PodMigrate.Runtime.Contract;

namespace PodMigrate.Runtime;

/// <summary>
/// Whether the checkpointed threads may be restored under the new container's spec. CRIU gives each thread back the
/// credentials its image records, whatever the spec says, so the restored tree must hold nothing the spec's process
/// could not have reached by itself:
/// <list type="bullet">
/// <item>every capability set within the spec's bounding set (the ceiling no process of the container can pass), and
/// with noNewPrivileges the permitted and effective sets within the spec's permitted set (nothing can be gained back);</item>
/// <item>every uid (real, effective, saved, fs) the spec's uid unless the bounding set has CAP_SETUID; likewise gids and
/// supplementary groups with CAP_SETGID (so a process caught inside a set-user-ID program is refused when the spec
/// could not have become that user);</item>
/// <item>no_new_privs set when the spec sets noNewPrivileges;</item>
/// <item>a seccomp filter in force when the spec has one (its rules are not compared: see the README's security model).</item>
/// </list>
/// Pure: tested without runc.
/// </summary>
internal static class CredentialCheck
{
    /// <summary>Why the threads may not be restored under <paramref name="grant"/>; empty when they may.</summary>
    public static IReadOnlyList<string> Excess(IReadOnlyList<CheckpointedThread> threads, OciProcessGrant grant)
    {
        if (threads.Count == 0)
        {
            return ["the seal records no checkpointed thread, so what the restored process would hold is unknown"];
        }
        var excess = new List<string>();
        foreach (var thread in threads)
        {
            var reasons = new List<string>();
            Capabilities(reasons, "bounding", thread.CapBounding, grant.Bounding, "bounding");
            Capabilities(reasons, "permitted", thread.CapPermitted, grant.Bounding, "bounding");
            Capabilities(reasons, "effective", thread.CapEffective, grant.Bounding, "bounding");
            Capabilities(reasons, "inheritable", thread.CapInheritable, grant.Bounding, "bounding");
            Capabilities(reasons, "ambient", thread.CapAmbient, grant.Bounding, "bounding");
            if (grant.NoNewPrivileges)
            {
                Capabilities(reasons, "permitted", thread.CapPermitted & grant.Bounding, grant.Permitted, "permitted (noNewPrivileges)");
                Capabilities(reasons, "effective", thread.CapEffective & grant.Bounding, grant.Permitted, "permitted (noNewPrivileges)");
                if (thread.NoNewPrivileges != true)
                {
                    reasons.Add(thread.NoNewPrivileges is null
                        ? "its image does not record no_new_privs, which the spec sets"
                        : "no_new_privs is off, which the spec sets");
                }
            }
            if (!grant.BoundingHas(OciProcessGrant.CapSetuid))
            {
                Ids(reasons, "uid", [thread.Uid, thread.EffectiveUid, thread.SavedUid, thread.FsUid], [grant.Uid], "CAP_SETUID");
            }
            if (!grant.BoundingHas(OciProcessGrant.CapSetgid))
            {
                Ids(reasons, "gid", [thread.Gid, thread.EffectiveGid, thread.SavedGid, thread.FsGid], [grant.Gid], "CAP_SETGID");
                Ids(reasons, "supplementary group", thread.Groups, [grant.Gid, .. grant.AdditionalGids], "CAP_SETGID");
            }
            if (grant.Seccomp && thread.SeccompMode == "disabled")
            {
                reasons.Add("it runs without a seccomp filter, which the spec requires");
            }
            if (reasons.Count > 0)
            {
                excess.Add($"{thread}: {string.Join("; ", reasons)}");
            }
        }
        return excess;
    }

    private static void Capabilities(List<string> reasons, string set, ulong held, ulong allowed, string allowedName)
    {
        var beyond = held & ~allowed;
        if (beyond != 0)
        {
            reasons.Add($"{set} capabilities {OciProcessGrant.Describe(beyond)} are not in the spec's {allowedName} set");
        }
    }

    private static void Ids(List<string> reasons, string kind, IReadOnlyList<uint> held, IReadOnlyList<uint> allowed, string capability)
    {
        var foreign = held.Where(id => !allowed.Contains(id)).Distinct().ToArray();
        if (foreign.Length > 0)
        {
            reasons.Add($"{kind} {string.Join(", ", foreign.Select(i => i.ToString(CultureInfo.InvariantCulture)))} where the spec runs as "
                + $"{string.Join(", ", allowed.Distinct().Select(i => i.ToString(CultureInfo.InvariantCulture)))} without {capability}");
        }
    }
}
