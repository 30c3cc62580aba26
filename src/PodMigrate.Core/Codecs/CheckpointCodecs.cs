using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Codecs;

/// <summary>The codecs PodMigrate knows, by name; the one place that turns a name and level into a codec.</summary>
public static class CheckpointCodecs
{
    public const string ZstdName = "zstd";
    public const string GzipName = "gzip";
    public const string NoneName = "none";

    public static ICheckpointCodec Zstd { get; } = new ZstdCodec();

    public static ICheckpointCodec Gzip { get; } = new GzipCodec();

    public static ICheckpointCodec None { get; } = new NoneCodec();

    public static IReadOnlyList<ICheckpointCodec> All { get; } = [Zstd, Gzip, None];

    /// <summary>The default for new checkpoints: zstd level 1 on every core (like <c>zstd -T0 -1</c>).</summary>
    public static CodecSettings Default { get; } = new(ZstdName, 1);

    /// <summary>The codec named <paramref name="name"/>; an unknown name is InvalidArgument naming it.</summary>
    public static ICheckpointCodec Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var codec in All)
        {
            if (string.Equals(codec.Name, name, StringComparison.Ordinal))
            {
                return codec;
            }
        }

        throw PodMigrateException.InvalidArgument(
            $"unknown codec \"{name}\": expected one of {string.Join(", ", All.Select(c => c.Name))}");
    }

    /// <summary>Validates a codec name and an optional level (the codec's default when null).</summary>
    public static CodecSettings Resolve(string name, int? level)
    {
        var codec = Get(name);
        var resolved = level ?? codec.DefaultLevel;
        if (resolved < codec.MinLevel || resolved > codec.MaxLevel)
        {
            throw PodMigrateException.InvalidArgument(
                $"level {resolved} is out of range for codec \"{codec.Name}\" ({codec.MinLevel}..{codec.MaxLevel})");
        }

        return new CodecSettings(codec.Name, resolved);
    }
}
