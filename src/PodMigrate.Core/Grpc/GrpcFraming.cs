using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace PodMigrate.Core.Grpc;

/// <summary>
/// Length-prefixed messages: 1 flag byte (0 = not compressed) + 4-byte big-endian length + the protobuf bytes.
/// Reading is incremental: a frame is parsed as soon as its bytes are in, and its size is checked before waiting for them.
/// </summary>
internal static class GrpcFraming
{
    public const int HeaderSize = 5;

    public static void WriteMessage(IBufferWriter<byte> writer, IMessage message)
    {
        var size = message.CalculateSize();
        var header = writer.GetSpan(HeaderSize);
        header[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[1..], (uint)size);
        writer.Advance(HeaderSize);
        message.WriteTo(writer);
    }

    /// <summary>Writes the frame of <paramref name="message"/> (of <paramref name="size"/> bytes) into <paramref name="destination"/>; returns its length.</summary>
    public static int WriteFrame(Span<byte> destination, IMessage message, int size)
    {
        destination[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(destination[1..], (uint)size);
        message.WriteTo(destination.Slice(HeaderSize, size));
        return HeaderSize + size;
    }

    public static byte[] ToFrame(IMessage message)
    {
        var writer = new ArrayBufferWriter<byte>(HeaderSize + message.CalculateSize());
        WriteMessage(writer, message);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>The next message, or default when the stream ended cleanly between frames.</summary>
    /// <exception cref="RpcException">Internal on a compressed or truncated frame or bad protobuf; ResourceExhausted over <paramref name="maxMessageSize"/>.</exception>
    public static async ValueTask<T?> ReadMessageAsync<T>(PipeReader reader, MessageParser<T> parser, int maxMessageSize, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (TryReadFrame(ref buffer, maxMessageSize, out var payload))
            {
                try
                {
                    return parser.ParseFrom(payload);
                }
                catch (InvalidProtocolBufferException e)
                {
                    throw new RpcException(new Status(StatusCode.Internal, $"cannot parse {typeof(T).Name}: {e.Message}"), new Metadata(), e);
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start);
                }
            }
            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                reader.AdvanceTo(buffer.End);
                return leftover == 0
                    ? default
                    : throw new RpcException(new Status(StatusCode.Internal, $"the stream ended inside a message ({leftover} bytes of an incomplete frame)"));
            }
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxMessageSize, out ReadOnlySequence<byte> payload)
    {
        payload = default;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        switch (header[0])
        {
            case 0:
                break;
            case 1:
                throw new RpcException(new Status(StatusCode.Internal, "received a compressed message, but no compression was negotiated"));
            default:
                throw new RpcException(new Status(StatusCode.Internal, $"invalid gRPC frame flags 0x{header[0]:X2}"));
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > (uint)maxMessageSize)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"received message larger than max ({length} vs. {maxMessageSize})"));
        }
        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }
        payload = buffer.Slice(HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }
}
