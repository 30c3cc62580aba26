using System.Buffers.Binary;
using Google.Protobuf;
using PodMigrate.Core.Errors;

namespace PodMigrate.Node.Criu;

/// <summary>
/// A CRIU image file: a magic (IMG_COMMON or IMG_SERVICE, then the image's own), then protobuf entries, each after its
/// size as a little-endian 32-bit word (criu/protobuf.c, pycriu images.py). Magic values from pycriu's magic.py.
/// </summary>
public static class CriuImageFile
{
    public const uint CommonMagic = 0x54564319;
    public const uint ServiceMagic = 0x55105940;
    public const uint PstreeMagic = 0x50273030;
    public const uint CoreMagic = 0x55053847;

    /// <summary>Largest entry accepted: a core image holds a few KiB; the images are untrusted input.</summary>
    private const int MaxEntryBytes = 16 << 20;

    /// <summary>Every entry of <paramref name="path"/>, which must carry <paramref name="magic"/>.</summary>
    public static IReadOnlyList<T> ReadEntries<T>(string path, uint magic, MessageParser<T> parser) where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(parser);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {Path.GetFileName(path)} is missing", e);
        }
        var data = bytes.AsSpan();
        var found = Word(data, path);
        data = data[4..];
        if (found is CommonMagic or ServiceMagic)
        {
            found = Word(data, path);
            data = data[4..];
        }
        if (found != magic)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {Path.GetFileName(path)} has magic 0x{found:x8}, not 0x{magic:x8}");
        }
        var entries = new List<T>();
        while (!data.IsEmpty)
        {
            var size = Word(data, path);
            data = data[4..];
            if (size > MaxEntryBytes || size > (uint)data.Length)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {Path.GetFileName(path)}: an entry of {size} bytes runs past the file's end");
            }
            try
            {
                entries.Add(parser.ParseFrom(data[..(int)size]));
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {Path.GetFileName(path)}: entry {entries.Count} does not decode: {e.Message}", e);
            }
            data = data[(int)size..];
        }
        return entries;
    }

    private static uint Word(ReadOnlySpan<byte> data, string path) => data.Length >= 4
        ? BinaryPrimitives.ReadUInt32LittleEndian(data)
        : throw new PodMigrateException(ErrorKind.DataLoss, $"CRIU image {Path.GetFileName(path)} is truncated");
}
