using System.Globalization;
using System.Net.Http.Headers;

namespace PodMigrate.Core.Grpc;

/// <summary>The client's view of how a call ended: grpc-status / grpc-message and the trailing metadata.</summary>
internal static class GrpcStatusReader
{
    /// <summary>Reads the status from trailers, or from the headers of a trailers-only response.</summary>
    public static bool TryReadStatus(HttpHeaders headers, out Status status)
    {
        status = default;
        if (!headers.TryGetValues(GrpcProtocol.StatusHeader, out var statusValues))
        {
            return false;
        }
        var rawStatus = statusValues.FirstOrDefault();
        var message = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messageValues)
            ? GrpcProtocol.DecodeMessage(messageValues.FirstOrDefault() ?? "")
            : "";
        status = int.TryParse(rawStatus, NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            ? new Status((StatusCode)code, message)
            : new Status(StatusCode.Unknown, $"invalid grpc-status \"{rawStatus}\" (message: {message})");
        return true;
    }

    public static Metadata ReadMetadata(HttpHeaders headers)
    {
        var metadata = new Metadata();
        foreach (var (name, values) in headers)
        {
            if (GrpcProtocol.IsReservedHeader(name))
            {
                continue;
            }
            foreach (var value in values)
            {
                metadata.Add(name, value);
            }
        }
        return metadata;
    }

    /// <summary>How a response that carries no grpc-status ended (an HTTP error, a proxy, not a gRPC server).</summary>
    public static Status FromHttpResponse(HttpResponseMessage response)
    {
        var httpStatus = (int)response.StatusCode;
        if (httpStatus != 200)
        {
            return new Status(GrpcProtocol.FromHttpStatus(httpStatus), $"bad gRPC response: HTTP status {httpStatus} {response.ReasonPhrase}".TrimEnd());
        }
        var contentType = response.Content.Headers.ContentType?.ToString();
        return GrpcProtocol.IsGrpcContentType(contentType)
            ? new Status(StatusCode.Internal, "the response ended without a grpc-status")
            : new Status(StatusCode.Unknown, $"bad gRPC response: content-type \"{contentType}\"");
    }
}
