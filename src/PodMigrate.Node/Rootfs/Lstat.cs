using System.Runtime.InteropServices;

namespace PodMigrate.Node.Rootfs;

/// <summary>
/// lstat(2) and getxattr(2), which .NET does not expose: an overlayfs upper layer marks deletions with 0:0 character
/// devices and opaque directories with an xattr, and neither is visible through FileSystemInfo.
/// </summary>
internal static partial class Lstat
{
    private const uint FileTypeMask = 0xF000; // S_IFMT
    private const uint CharacterDevice = 0x2000; // S_IFCHR

    /// <summary>struct stat on x86_64 (this project's nodes): 144 bytes; only the fields read here are named.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 144)]
    private struct Stat
    {
        [FieldOffset(24)]
        public uint Mode;

        [FieldOffset(40)]
        public ulong Rdev;
    }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LstatNative(string path, out Stat stat);

    [LibraryImport("libc", EntryPoint = "lgetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint LGetXattr(string path, string name, byte* value, nuint size);

    /// <summary>True when <paramref name="path"/> is an overlayfs whiteout: a character device with device number 0:0.</summary>
    public static bool IsWhiteout(string path)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            throw new PlatformNotSupportedException("reading overlayfs layers is implemented for linux/amd64");
        }
        if (LstatNative(path, out var stat) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"lstat {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
        return (stat.Mode & FileTypeMask) == CharacterDevice && stat.Rdev == 0;
    }

    /// <summary>True when the directory carries overlayfs' opaque marker (its lower contents are hidden).</summary>
    public static unsafe bool IsOpaqueDirectory(string path)
    {
        byte value = 0;
        foreach (var name in (ReadOnlySpan<string>)["trusted.overlay.opaque", "user.overlay.opaque"])
        {
            if (LGetXattr(path, name, &value, 1) == 1 && value == (byte)'y')
            {
                return true;
            }
        }
        return false;
    }
}
