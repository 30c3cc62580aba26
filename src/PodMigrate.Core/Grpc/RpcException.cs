namespace PodMigrate.Core.Grpc;

/// <summary>A call that ended with a non-OK status (client side), or a handler's way to end with one (server side).</summary>
public sealed class RpcException : Exception
{
    public RpcException(Status status)
        : this(status, new Metadata())
    {
    }

    public RpcException(Status status, Metadata trailers, Exception? innerException = null)
        : base($"{status.StatusCode}: {status.Detail}", innerException)
    {
        Status = status;
        Trailers = trailers;
    }

    public RpcException()
        : this(new Status(StatusCode.Unknown, ""))
    {
    }

    public RpcException(string message)
        : this(new Status(StatusCode.Unknown, message))
    {
    }

    public RpcException(string message, Exception innerException)
        : this(new Status(StatusCode.Unknown, message), new Metadata(), innerException)
    {
    }

    public Status Status { get; }

    public StatusCode StatusCode => Status.StatusCode;

    public Metadata Trailers { get; }
}
