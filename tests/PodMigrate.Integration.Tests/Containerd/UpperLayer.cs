namespace PodMigrate.Integration.Tests.Containerd;

/// <summary>
/// Copies an overlay upper directory (a container's rootfs changes) onto another snapshot's upper directory: what a
/// cross-node restore needs besides the CRIU images, since the process's open and written files live there.
/// Regular files, directories and symlinks only: a real transfer must also carry whiteouts (0:0 character devices)
/// and opaque-directory xattrs, i.e. an OCI layer diff (containerd's Diff service) rather than a plain copy.
/// </summary>
internal static class UpperLayer
{
    public static void Copy(string source, string destination)
    {
        foreach (var entry in new DirectoryInfo(source).EnumerateFileSystemInfos())
        {
            var target = Path.Combine(destination, entry.Name);
            if (entry.LinkTarget is not null)
            {
                File.CreateSymbolicLink(target, entry.LinkTarget);
            }
            else if (entry is DirectoryInfo directory)
            {
                Directory.CreateDirectory(target, directory.UnixFileMode);
                Copy(directory.FullName, target);
            }
            else if (entry is FileInfo { Attributes: not (FileAttributes.Device or FileAttributes.Device | FileAttributes.ReadOnly) } file)
            {
                file.CopyTo(target, overwrite: true);
                File.SetUnixFileMode(target, file.UnixFileMode);
            }
            else
            {
                throw new NotSupportedException($"{entry.FullName} is neither a file, a directory nor a symlink (a whiteout?): a plain copy cannot carry it");
            }
        }
    }
}
