using System.Runtime.InteropServices;

namespace PodMigrate.Core.Interop;

internal static partial class LibC
{
    /// <summary>
    /// glibc's malloc_trim: gives the free memory of every arena back to the kernel (madvise(MADV_DONTNEED) on the free
    /// pages inside the heaps too, not only the top of each heap as free() does). Returns 1 if memory was released.
    /// glibc only: musl has no such call (<see cref="EntryPointNotFoundException"/>).
    /// </summary>
    [LibraryImport(Library, EntryPoint = "malloc_trim")]
    public static partial int MallocTrim(nuint pad);
}
