using System.Text.Json;

namespace PodMigrate.Runtime;

/// <summary>
/// What the new container's spec lets its process hold: its user, the capability sets (as masks, bit n = capability n),
/// no_new_privs and whether a seccomp filter is required. Unknown capability names are left out (runc skips them too).
/// </summary>
internal sealed record OciProcessGrant(uint Uid, uint Gid, IReadOnlyList<uint> AdditionalGids, ulong Bounding, ulong Effective,
    ulong Permitted, ulong Inheritable, ulong Ambient, bool NoNewPrivileges, bool Seccomp)
{
    public const int CapSetgid = 6;
    public const int CapSetuid = 7;

    // linux/capability.h, CAP_CHOWN (0) to CAP_CHECKPOINT_RESTORE (40).
    private static readonly string[] Names =
    [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ];

    public bool BoundingHas(int capability) => (Bounding & (1UL << capability)) != 0;

    public static OciProcessGrant Parse(JsonElement root)
    {
        uint uid = 0, gid = 0;
        var additional = new List<uint>();
        ulong bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
        var noNewPrivileges = false;
        if (root.TryGetProperty("process", out var process) && process.ValueKind == JsonValueKind.Object)
        {
            if (process.TryGetProperty("user", out var user) && user.ValueKind == JsonValueKind.Object)
            {
                uid = Id(user, "uid");
                gid = Id(user, "gid");
                if (user.TryGetProperty("additionalGids", out var gids) && gids.ValueKind == JsonValueKind.Array)
                {
                    additional.AddRange(gids.EnumerateArray().Where(g => g.ValueKind == JsonValueKind.Number).Select(g => g.GetUInt32()));
                }
            }
            if (process.TryGetProperty("capabilities", out var caps) && caps.ValueKind == JsonValueKind.Object)
            {
                bounding = Set(caps, "bounding");
                effective = Set(caps, "effective");
                permitted = Set(caps, "permitted");
                inheritable = Set(caps, "inheritable");
                ambient = Set(caps, "ambient");
            }
            noNewPrivileges = process.TryGetProperty("noNewPrivileges", out var nnp) && nnp.ValueKind == JsonValueKind.True;
        }
        var seccomp = root.TryGetProperty("linux", out var linux) && linux.ValueKind == JsonValueKind.Object
            && linux.TryGetProperty("seccomp", out var filter) && filter.ValueKind == JsonValueKind.Object;
        return new OciProcessGrant(uid, gid, additional, bounding, effective, permitted, inheritable, ambient, noNewPrivileges, seccomp);
    }

    /// <summary>"CAP_CHOWN, CAP_KILL" for the bits of <paramref name="mask"/> (unnamed bits as "cap 63").</summary>
    public static string Describe(ulong mask)
        => string.Join(", ", Enumerable.Range(0, 64).Where(b => (mask & (1UL << b)) != 0)
            .Select(b => b < Names.Length ? "CAP_" + Names[b] : "cap " + b.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    private static ulong Set(JsonElement caps, string name)
    {
        ulong mask = 0;
        if (caps.TryGetProperty(name, out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in list.EnumerateArray())
            {
                var capability = item.GetString() ?? "";
                var bit = Array.IndexOf(Names, capability.StartsWith("CAP_", StringComparison.Ordinal) ? capability[4..] : capability);
                if (bit >= 0)
                {
                    mask |= 1UL << bit;
                }
            }
        }
        return mask;
    }

    private static uint Id(JsonElement user, string name)
        => user.TryGetProperty(name, out var id) && id.ValueKind == JsonValueKind.Number ? id.GetUInt32() : 0;
}
