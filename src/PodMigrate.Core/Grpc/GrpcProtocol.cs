using System.Text;

namespace PodMigrate.Core.Grpc;

/// <summary>The wire vocabulary of gRPC over HTTP/2 shared by the client and the server.</summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";

    /// <summary>"application/grpc", optionally followed by "+proto" / ";params" (as the spec allows).</summary>
    public static bool IsGrpcContentType(string? contentType)
        => contentType is not null
            && contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase)
            && (contentType.Length == ContentType.Length || contentType[ContentType.Length] is '+' or ';');

    /// <summary>Headers the protocol owns: not user metadata in either direction.</summary>
    public static bool IsReservedHeader(string name)
        => name.StartsWith(':')
            || name.Equals("content-type", StringComparison.OrdinalIgnoreCase)
            || name.Equals("te", StringComparison.OrdinalIgnoreCase)
            || name.Equals("host", StringComparison.OrdinalIgnoreCase)
            || name.Equals("content-length", StringComparison.OrdinalIgnoreCase)
            || name.Equals(StatusHeader, StringComparison.OrdinalIgnoreCase)
            || name.Equals(MessageHeader, StringComparison.OrdinalIgnoreCase)
            || name.Equals(TimeoutHeader, StringComparison.OrdinalIgnoreCase)
            || name.Equals(EncodingHeader, StringComparison.OrdinalIgnoreCase)
            || name.Equals(AcceptEncodingHeader, StringComparison.OrdinalIgnoreCase);

    /// <summary>A response without grpc-status, per gRPC's "HTTP to gRPC Status Code Mapping".</summary>
    public static StatusCode FromHttpStatus(int httpStatus) => httpStatus switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    /// <summary>An HTTP/2 RST_STREAM / GOAWAY error code, per gRPC's PROTOCOL-HTTP2 "Errors" section.</summary>
    public static StatusCode FromHttp2ErrorCode(long errorCode) => errorCode switch
    {
        0x7 => StatusCode.Unavailable,        // REFUSED_STREAM: safe to retry
        0x8 => StatusCode.Cancelled,          // CANCEL
        0xb => StatusCode.ResourceExhausted,  // ENHANCE_YOUR_CALM
        0xc => StatusCode.PermissionDenied,   // INADEQUATE_SECURITY
        _ => StatusCode.Internal,
    };

    /// <summary>grpc-message encoding: UTF-8, then every byte outside 0x20-0x7E and '%' itself as %XX.</summary>
    public static string EncodeMessage(string message)
    {
        if (!NeedsEncoding(message))
        {
            return message;
        }
        var bytes = Encoding.UTF8.GetBytes(message);
        var builder = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (b is >= 0x20 and <= 0x7E && b != (byte)'%')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        return builder.ToString();
    }

    /// <summary>The inverse of <see cref="EncodeMessage"/>; a malformed %-sequence is kept as it is, as the spec asks.</summary>
    public static string DecodeMessage(string encoded)
    {
        if (!encoded.Contains('%', StringComparison.Ordinal))
        {
            return encoded;
        }
        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '%' && i + 2 < encoded.Length
                && Uri.IsHexDigit(encoded[i + 1]) && Uri.IsHexDigit(encoded[i + 2]))
            {
                bytes.Add((byte)Convert.ToInt32(encoded.Substring(i + 1, 2), 16));
                i += 2;
            }
            else
            {
                // Header values arrive as Latin-1/ASCII: one char is one byte.
                bytes.Add((byte)encoded[i]);
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool NeedsEncoding(string message)
    {
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                return true;
            }
        }
        return false;
    }
}
