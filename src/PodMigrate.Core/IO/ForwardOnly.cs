namespace PodMigrate.Core.IO;

/// <summary>
/// Position and Seek for the pass-through readers: they report a Position and a Length (TarWriter sizes an entry from
/// them and seeks to where the stream already is) but only ever move forward.
/// </summary>
internal static class ForwardOnly
{
    /// <summary>Accepts a move to <paramref name="target"/> only when it is <paramref name="current"/>.</summary>
    public static void MoveTo(long current, long target)
    {
        if (target != current)
        {
            throw new NotSupportedException("this stream only moves forward: it cannot go to another position");
        }
    }

    /// <summary>A Seek: the position asked for, which must be the current one; <paramref name="length"/> is read only for <see cref="SeekOrigin.End"/>.</summary>
    public static long Seek(long current, Func<long> length, long offset, SeekOrigin origin)
    {
        var target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => current + offset,
            _ => length() + offset,
        };
        MoveTo(current, target);
        return target;
    }
}
