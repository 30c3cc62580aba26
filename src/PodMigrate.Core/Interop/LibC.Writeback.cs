using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace PodMigrate.Core.Interop;

internal static partial class LibC
{
    public const uint SYNC_FILE_RANGE_WRITE = 2;

    /// <summary>Starts writeback of a range without waiting for it (a hint; a failure shows up again at fsync).</summary>
    [LibraryImport(Library, EntryPoint = "sync_file_range", SetLastError = true)]
    public static partial int SyncFileRange(SafeFileHandle fd, long offset, long count, uint flags);
}
