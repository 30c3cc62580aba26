namespace PodMigrate.Node.Containerd;

/// <summary>
/// Builds the runtime spec of a container from its image config, with the defaults containerd's own client uses
/// (mounts, capabilities, masked paths, namespaces), minus <c>oomScoreAdj</c>: root on these machines lacks
/// CAP_SYS_RESOURCE, and runc fails to start a container that asks for it.
/// </summary>
public sealed class OciSpecBuilder
{
    private static readonly string[] DefaultCapabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    private static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/scsi",
    ];

    private static readonly string[] ReadonlyPaths =
        ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    private static readonly OciMount[] StandardMounts =
    [
        new("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        new("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        new("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        new("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        new("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        new("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        new("/run", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
    ];

    private static readonly string[] DefaultNamespaces = ["pid", "ipc", "uts", "mount", "network"];

    private readonly string _containerId;
    private readonly OciImageConfig _image;
    private readonly List<string> _env = [];
    private IReadOnlyList<string>? _args;
    private string? _cgroupsPath;
    private string? _hostname;

    public OciSpecBuilder(string containerId, OciImageConfig image)
    {
        ArgumentException.ThrowIfNullOrEmpty(containerId);
        ArgumentNullException.ThrowIfNull(image);
        _containerId = containerId;
        _image = image;
    }

    /// <summary>Replaces the image's entrypoint + cmd.</summary>
    public OciSpecBuilder WithArgs(params string[] args)
    {
        _args = args;
        return this;
    }

    /// <summary>Adds or overrides one environment variable on top of the image's.</summary>
    public OciSpecBuilder WithEnv(string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _env.RemoveAll(e => e.StartsWith(name + "=", StringComparison.Ordinal));
        _env.Add($"{name}={value}");
        return this;
    }

    /// <summary>The cgroup path; default <c>/&lt;namespace&gt;/&lt;id&gt;</c> like containerd's client.</summary>
    public OciSpecBuilder WithCgroupsPath(string path)
    {
        _cgroupsPath = path;
        return this;
    }

    public OciSpecBuilder WithHostname(string hostname)
    {
        _hostname = hostname;
        return this;
    }

    public OciSpec Build(string @namespace)
    {
        var config = _image.Config ?? new OciContainerConfig();
        var args = _args ?? [.. config.Entrypoint ?? [], .. config.Cmd ?? []];
        if (args.Count == 0)
        {
            throw PodMigrate.Core.Errors.PodMigrateException.InvalidArgument($"container {_containerId}: the image has no entrypoint or cmd and no args were given");
        }
        var env = new List<string>(config.Env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
        foreach (var e in _env)
        {
            var name = e[..(e.IndexOf('=', StringComparison.Ordinal) + 1)];
            env.RemoveAll(x => x.StartsWith(name, StringComparison.Ordinal));
            env.Add(e);
        }
        return new OciSpec
        {
            Process = new OciProcess
            {
                Args = args,
                Env = env,
                Cwd = string.IsNullOrEmpty(config.WorkingDir) ? "/" : config.WorkingDir,
                Capabilities = new OciCapabilities(DefaultCapabilities, DefaultCapabilities, DefaultCapabilities),
                Rlimits = [new OciRlimit("RLIMIT_NOFILE", 1024, 1024)],
                NoNewPrivileges = true,
            },
            Root = new OciRoot("rootfs"),
            Hostname = _hostname ?? _containerId,
            Mounts = StandardMounts,
            Linux = new OciLinux
            {
                Resources = new OciResources([new OciDeviceRule(Allow: false, Access: "rwm")]),
                CgroupsPath = _cgroupsPath ?? $"/{@namespace}/{_containerId}",
                Namespaces = [.. DefaultNamespaces.Select(t => new OciNamespace(t))],
                MaskedPaths = MaskedPaths,
                ReadonlyPaths = ReadonlyPaths,
            },
        };
    }
}
