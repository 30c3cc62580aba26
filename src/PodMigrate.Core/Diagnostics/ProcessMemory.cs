using System.Globalization;
using PodMigrate.Core.Interop;

namespace PodMigrate.Core.Diagnostics;

/// <summary>
/// A process's resident memory by kind, from /proc/&lt;pid&gt;/status (KiB): anonymous (the GC heap, glibc's malloc
/// arenas, thread stacks), file-backed (the runtime's and the assemblies' mapped images: clean pages the kernel can drop
/// and read again) and shared memory (with W^X on, the JIT's code and stubs live in a memfd mapped twice).
/// </summary>
public readonly record struct ProcessMemory(long RssKiB, long AnonKiB, long FileKiB, long ShmemKiB, int Threads)
{
    /// <summary>The process's figures now, or null when it is gone.</summary>
    public static ProcessMemory? Read(int pid)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines($"/proc/{pid}/status");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        long Field(string name)
        {
            var line = lines.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal));
            return line is null ? -1 : long.Parse(line[(name.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return new ProcessMemory(Field("VmRSS"), Field("RssAnon"), Field("RssFile"), Field("RssShmem"), (int)Field("Threads"));
    }

    /// <summary>This process's figures now.</summary>
    public static ProcessMemory Current() => Read(Environment.ProcessId) ?? throw new InvalidOperationException("/proc/self/status is not readable");

    /// <summary>
    /// Gives the free memory glibc's malloc holds back to the kernel (malloc_trim(0)); false where there is no such call
    /// (not glibc) or nothing was released.
    /// </summary>
    public static bool ReleaseFreeNativeMemory()
    {
        try
        {
            return LibC.MallocTrim(0) == 1;
        }
        catch (EntryPointNotFoundException)
        {
            return false;
        }
    }
}
