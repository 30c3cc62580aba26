using PodMigrate.Core.Interop;

namespace PodMigrate.Node.Rootfs;

/// <summary>
/// An overlayfs upper layer marks opaque directories (whose lower contents are hidden) with an xattr, read with
/// lgetxattr(2) from <see cref="LibC"/>. Whiteouts are read with <see cref="Core.IO.FileKinds.IsOverlayWhiteout"/>.
/// </summary>
internal static class OverlayXattrs
{
    /// <summary>True when the directory carries overlayfs' opaque marker.</summary>
    public static unsafe bool IsOpaqueDirectory(string path)
    {
        byte value = 0;
        foreach (var name in (ReadOnlySpan<string>)["trusted.overlay.opaque", "user.overlay.opaque"])
        {
            if (LibC.LGetXattr(path, name, &value, 1) == 1 && value == (byte)'y')
            {
                return true;
            }
        }
        return false;
    }
}
