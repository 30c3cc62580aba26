using PodMigrate.Core.IO;

namespace PodMigrate.Core.Codecs;

/// <summary>"none"'s streams: a one-direction view of another stream, so "none" behaves like the other codecs (direction, leaveOpen).</summary>
internal static class PassThroughStream
{
    public static Stream Reading(Stream inner, bool leaveOpen) => new Reader(inner, leaveOpen);

    public static Stream Writing(Stream inner, bool leaveOpen) => new Writer(inner, leaveOpen);

    private sealed class Reader(Stream inner, bool leaveOpen) : ReadOnlyStream(inner, leaveOpen)
    {
        public override int Read(Span<byte> buffer)
        {
            ThrowIfDisposed();
            return Inner.Read(buffer);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ThrowIfDisposed();
            return Inner.ReadAsync(buffer, cancellationToken);
        }
    }

    private sealed class Writer(Stream inner, bool leaveOpen) : WriteOnlyStream(inner, leaveOpen)
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            ThrowIfDisposed();
            Inner.Write(buffer);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ThrowIfDisposed();
            return Inner.WriteAsync(buffer, cancellationToken);
        }
    }
}
