using System.Runtime.InteropServices;

namespace PodMigrate.Node.Rootfs;

/// <summary>
/// lgetxattr(2), which .NET does not expose: an overlayfs upper layer marks opaque directories (whose lower contents
/// are hidden) with an xattr. Whiteouts are read with <see cref="Core.IO.FileKinds.IsOverlayWhiteout"/>.
/// </summary>
internal static partial class OverlayXattrs
{
    [LibraryImport("libc", EntryPoint = "lgetxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial nint LGetXattr(string path, string name, byte* value, nuint size);

    /// <summary>True when the directory carries overlayfs' opaque marker.</summary>
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
