using System.Globalization;
using System.Runtime.InteropServices;
using k8s.Models;

namespace PodMigrate.NodeEmulator.Nodes;

/// <summary>What kubelet's cadvisor and node-info setters read about the host, read the same way (/proc, /etc, /sys).</summary>
internal sealed record HostFacts(int Cpus, long MemoryKib, long RootFsKib, string MachineId, string SystemUuid, string BootId, string KernelVersion, string OsImage, string Architecture)
{
    /// <summary>kubelet's default hard eviction threshold memory.available&lt;100Mi, held back from allocatable.</summary>
    private const long EvictionReserveKib = 100 * 1024;

    /// <summary>A node memory capacity that is enforced (a cgroup over all its pods): capacity and allocatable both, no reserve held back.</summary>
    public long? EnforcedMemoryBytes { get; init; }

    public static HostFacts Read()
    {
        var machineId = ReadTrimmed("/etc/machine-id") ?? ReadTrimmed("/var/lib/dbus/machine-id") ?? "";
        return new HostFacts(
            Environment.ProcessorCount,
            MemTotalKib(),
            ReadRootFsKib(),
            machineId,
            // Where there is no DMI (VMs without it), kubelet's cadvisor falls back likewise.
            ReadTrimmed("/sys/class/dmi/id/product_uuid") ?? machineId,
            ReadTrimmed("/proc/sys/kernel/random/boot_id") ?? "",
            ReadTrimmed("/proc/sys/kernel/osrelease") ?? "",
            ReadOsImage(),
            GoArch(RuntimeInformation.OSArchitecture));
    }

    public Dictionary<string, string> Capacity(int maxPods) => new(StringComparer.Ordinal)
    {
        ["cpu"] = Cpus.ToString(CultureInfo.InvariantCulture),
        ["memory"] = EnforcedMemoryBytes is { } bytes ? bytes.ToString(CultureInfo.InvariantCulture) : Kib(MemoryKib),
        ["ephemeral-storage"] = Kib(RootFsKib),
        ["hugepages-2Mi"] = "0",
        ["pods"] = maxPods.ToString(CultureInfo.InvariantCulture),
    };

    public Dictionary<string, string> Allocatable(int maxPods)
    {
        var allocatable = Capacity(maxPods);
        if (EnforcedMemoryBytes is null)
        {
            allocatable["memory"] = Kib(Math.Max(0, MemoryKib - EvictionReserveKib));
        }
        return allocatable;
    }

    public V1NodeSystemInfo SystemInfo(string containerRuntimeVersion, string kubeletVersion) => new()
    {
        MachineID = MachineId,
        SystemUUID = SystemUuid,
        BootID = BootId,
        KernelVersion = KernelVersion,
        OsImage = OsImage,
        ContainerRuntimeVersion = containerRuntimeVersion,
        KubeletVersion = kubeletVersion,
        OperatingSystem = "linux",
        Architecture = Architecture,
    };

    /// <summary>GOARCH names, as kubernetes.io/arch uses them.</summary>
    public static string GoArch(Architecture architecture) => architecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        System.Runtime.InteropServices.Architecture.Arm => "arm",
        System.Runtime.InteropServices.Architecture.S390x => "s390x",
        System.Runtime.InteropServices.Architecture.Ppc64le => "ppc64le",
        System.Runtime.InteropServices.Architecture.RiscV64 => "riscv64",
        System.Runtime.InteropServices.Architecture.LoongArch64 => "loong64",
        var other => other.ToString().ToLowerInvariant(),
    };

    private static string Kib(long kib) => string.Create(CultureInfo.InvariantCulture, $"{kib}Ki");

    private static long MemTotalKib()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            // "MemTotal:       24684084 kB"
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return long.Parse(fields[1], CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }

    private static long ReadRootFsKib()
    {
        try
        {
            return new DriveInfo("/").TotalSize / 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string ReadOsImage()
    {
        foreach (var line in ReadLines("/etc/os-release"))
        {
            if (line.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))
            {
                return line["PRETTY_NAME=".Length..].Trim('"');
            }
        }
        return "Linux";
    }

    private static IEnumerable<string> ReadLines(string path) => File.Exists(path) ? File.ReadLines(path) : [];

    private static string? ReadTrimmed(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return text.Length == 0 ? null : text;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
