using System.Runtime.InteropServices;

namespace PodMigrate.Core.Codecs;

/// <summary>Debian's libzstd (libzstd.so.1): the streaming API, with multi-threaded compression.</summary>
internal static unsafe partial class ZstdNative
{
    private const string Library = "libzstd.so.1";

    public const int CompressionLevelParameter = 100; // ZSTD_c_compressionLevel
    public const int ChecksumFlagParameter = 201;     // ZSTD_c_checksumFlag
    public const int NbWorkersParameter = 400;        // ZSTD_c_nbWorkers

    public enum EndDirective
    {
        Continue = 0,
        Flush = 1,
        End = 2,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct InBuffer
    {
        public byte* Source;
        public nuint Size;
        public nuint Position;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct OutBuffer
    {
        public byte* Destination;
        public nuint Size;
        public nuint Position;
    }

    [LibraryImport(Library, EntryPoint = "ZSTD_createCCtx")]
    public static partial ZstdCompressionContextHandle CreateCompressionContext();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeCCtx")]
    public static partial nuint FreeCompressionContext(nint context);

    [LibraryImport(Library, EntryPoint = "ZSTD_CCtx_setParameter")]
    public static partial nuint SetParameter(ZstdCompressionContextHandle context, int parameter, int value);

    [LibraryImport(Library, EntryPoint = "ZSTD_compressStream2")]
    public static partial nuint CompressStream2(ZstdCompressionContextHandle context, OutBuffer* output, InBuffer* input, EndDirective endOp);

    [LibraryImport(Library, EntryPoint = "ZSTD_CStreamOutSize")]
    public static partial nuint CompressStreamOutSize();

    [LibraryImport(Library, EntryPoint = "ZSTD_createDCtx")]
    public static partial ZstdDecompressionContextHandle CreateDecompressionContext();

    [LibraryImport(Library, EntryPoint = "ZSTD_freeDCtx")]
    public static partial nuint FreeDecompressionContext(nint context);

    [LibraryImport(Library, EntryPoint = "ZSTD_decompressStream")]
    public static partial nuint DecompressStream(ZstdDecompressionContextHandle context, OutBuffer* output, InBuffer* input);

    [LibraryImport(Library, EntryPoint = "ZSTD_DStreamInSize")]
    public static partial nuint DecompressStreamInSize();

    [LibraryImport(Library, EntryPoint = "ZSTD_isError")]
    public static partial uint IsError(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_getErrorName")]
    public static partial nint GetErrorName(nuint code);

    [LibraryImport(Library, EntryPoint = "ZSTD_minCLevel")]
    public static partial int MinCompressionLevel();

    [LibraryImport(Library, EntryPoint = "ZSTD_maxCLevel")]
    public static partial int MaxCompressionLevel();

    [LibraryImport(Library, EntryPoint = "ZSTD_versionString")]
    public static partial nint VersionString();

    public static string Version => Marshal.PtrToStringUTF8(VersionString()) ?? "unknown";

    /// <summary>Returns <paramref name="code"/> unless it is a zstd error, which becomes an exception of the kind <paramref name="fail"/> makes.</summary>
    public static nuint Check(nuint code, Func<string, Exception> fail)
        => IsError(code) != 0 ? throw fail(Marshal.PtrToStringUTF8(GetErrorName(code)) ?? $"zstd error {code}") : code;
}

internal sealed class ZstdCompressionContextHandle : SafeHandle
{
    public ZstdCompressionContextHandle()
        : base(nint.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        _ = ZstdNative.FreeCompressionContext(handle);
        return true;
    }
}

internal sealed class ZstdDecompressionContextHandle : SafeHandle
{
    public ZstdDecompressionContextHandle()
        : base(nint.Zero, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == nint.Zero;

    protected override bool ReleaseHandle()
    {
        _ = ZstdNative.FreeDecompressionContext(handle);
        return true;
    }
}
