namespace PodMigrate.Core.Codecs;

/// <summary>zstd through Debian's libzstd, multi-threaded: <see cref="Workers"/> defaults to every core (<c>zstd -T0</c>).</summary>
internal sealed class ZstdCodec : ICheckpointCodec
{
    public string Name => CheckpointCodecs.ZstdName;

    public string ArchiveExtension => ".tar.zst";

    public int DefaultLevel => 1;

    public int MinLevel => 1;

    public int MaxLevel { get; } = ZstdNative.MaxCompressionLevel();

    /// <summary>Compression threads; 0 compresses on the caller's thread.</summary>
    public int Workers { get; init; } = Environment.ProcessorCount;

    public Stream CreateCompressor(Stream destination, int level, bool leaveOpen)
        => new ZstdCompressStream(destination, level, Workers, leaveOpen);

    public Stream CreateDecompressor(Stream source, bool leaveOpen)
        => new ZstdDecompressStream(source, leaveOpen);
}
