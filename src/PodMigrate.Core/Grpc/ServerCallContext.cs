namespace PodMigrate.Core.Grpc;

/// <summary>What a server handler knows about its call (the role of Grpc.Core.ServerCallContext).</summary>
public abstract class ServerCallContext
{
    /// <summary>"/package.Service/Method".</summary>
    public abstract string Method { get; }

    public abstract string Peer { get; }

    public abstract Metadata RequestHeaders { get; }

    /// <summary>From the client's grpc-timeout; DateTime.MaxValue when it sent none.</summary>
    public abstract DateTime Deadline { get; }

    /// <summary>Fires when the client cancels, the connection drops, or the deadline passes.</summary>
    public abstract CancellationToken CancellationToken { get; }

    /// <summary>Extra trailers to send with the status.</summary>
    public abstract Metadata ResponseTrailers { get; }
}

public interface IServerStreamWriter<in T>
{
    Task WriteAsync(T message, CancellationToken cancellationToken = default);
}

public delegate Task<TResponse> UnaryServerMethod<in TRequest, TResponse>(TRequest request, ServerCallContext context);

public delegate Task ServerStreamingServerMethod<in TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context);
