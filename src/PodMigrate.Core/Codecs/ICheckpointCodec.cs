namespace PodMigrate.Core.Codecs;

/// <summary>
/// The outer compression of a checkpoint archive. Implementations stream: the compressor is a write-only
/// <see cref="Stream"/> over the destination, the decompressor a read-only one over the source.
/// Both report corrupt or truncated input as <see cref="InvalidDataException"/>.
/// </summary>
public interface ICheckpointCodec
{
    /// <summary>Name used in manifests, options and on the command line: "zstd", "gzip", "none".</summary>
    string Name { get; }

    /// <summary>Extension of an archive written with this codec, e.g. ".tar.zst".</summary>
    string ArchiveExtension { get; }

    int DefaultLevel { get; }

    int MinLevel { get; }

    int MaxLevel { get; }

    /// <summary>A write-only stream compressing into <paramref name="destination"/>; disposing it writes the end of the stream.</summary>
    Stream CreateCompressor(Stream destination, int level, bool leaveOpen);

    /// <summary>A read-only stream decompressing <paramref name="source"/>.</summary>
    Stream CreateDecompressor(Stream source, bool leaveOpen);
}
