namespace PodMigrate.Core.Codecs;

/// <summary>No outer compression: the archive is the plain tar the CRI runtimes and checkpointctl expect.</summary>
internal sealed class NoneCodec : ICheckpointCodec
{
    public string Name => CheckpointCodecs.NoneName;

    public string ArchiveExtension => ".tar";

    public int DefaultLevel => 0;

    public int MinLevel => 0;

    public int MaxLevel => 0;

    public Stream CreateCompressor(Stream destination, int level, bool leaveOpen)
        => PassThroughStream.Writing(destination, leaveOpen);

    public Stream CreateDecompressor(Stream source, bool leaveOpen)
        => PassThroughStream.Reading(source, leaveOpen);
}
