namespace PodMigrate.Core.Grpc;

/// <summary>Per-call settings (the role of Grpc.Core.CallOptions).</summary>
/// <param name="Headers">Request metadata sent as HTTP/2 headers.</param>
/// <param name="Deadline">UTC instant after which the call fails with DeadlineExceeded; sent as grpc-timeout and enforced locally.</param>
/// <param name="CancellationToken">Cancels the call (StatusCode.Cancelled; RST_STREAM to the server).</param>
public readonly record struct CallOptions(Metadata? Headers = null, DateTime? Deadline = null, CancellationToken CancellationToken = default);
