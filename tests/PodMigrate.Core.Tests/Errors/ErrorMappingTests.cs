using System.Net.Sockets;
using System.Security.Authentication;
using Grpc.Core;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Tests.Errors;

/// <summary>The client edge shared by the agent, containerd and CRI clients: transport failures versus statuses.</summary>
public sealed class ErrorMappingTests
{
    [Fact]
    public void A_server_certificate_the_client_refuses_is_unavailable_with_the_tls_reason_although_grpc_dotnet_says_internal()
    {
        var handshake = new HttpRequestException(HttpRequestError.SecureConnectionError, "The SSL connection could not be established, see inner exception.",
            new AuthenticationException("The remote certificate is invalid according to the validation procedure: RemoteCertificateNameMismatch"));
        var e = new RpcException(new Status(StatusCode.Internal, "Error starting gRPC call.", handshake));

        var mapped = ErrorMapping.ToException(e, "checking health on the agent at https://10.0.0.7:7440");

        mapped.Kind.ShouldBe(ErrorKind.Unavailable);
        mapped.Message.ShouldBe("checking health on the agent at https://10.0.0.7:7440: The SSL connection could not be established, see inner exception.: "
            + "The remote certificate is invalid according to the validation procedure: RemoteCertificateNameMismatch");
        mapped.InnerException.ShouldBeSameAs(e);
    }

    [Fact]
    public void A_refused_connection_is_unavailable_with_the_socket_reason()
    {
        var refused = new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (127.0.0.1:1)", new SocketException((int)SocketError.ConnectionRefused));
        var e = new RpcException(new Status(StatusCode.Unavailable, "Error connecting to subchannel.", refused));

        var mapped = ErrorMapping.ToException(e, "listing containers");

        mapped.Kind.ShouldBe(ErrorKind.Unavailable);
        mapped.Message.ShouldStartWith("listing containers: Connection refused (127.0.0.1:1)");
    }

    [Fact]
    public void An_internal_error_of_message_handling_stays_internal()
    {
        // grpc-dotnet also carries a DebugException for a response it cannot deserialize: that is no transport failure.
        var e = new RpcException(new Status(StatusCode.Internal, "Failed to deserialize response message.", new InvalidOperationException("truncated message")));

        var mapped = ErrorMapping.ToException(e, "getting node info");

        mapped.Kind.ShouldBe(ErrorKind.Internal);
        mapped.Message.ShouldBe("getting node info: Failed to deserialize response message.");
    }

    [Theory]
    [InlineData(StatusCode.NotFound, ErrorKind.NotFound)]
    [InlineData(StatusCode.Unavailable, ErrorKind.Unavailable)]
    [InlineData(StatusCode.Internal, ErrorKind.Internal)]
    public void A_status_from_the_server_keeps_its_kind_and_detail(StatusCode code, ErrorKind kind)
    {
        var mapped = ErrorMapping.ToException(new RpcException(new Status(code, "container c1 not found")), "deleting c1");

        mapped.Kind.ShouldBe(kind);
        mapped.Message.ShouldBe("deleting c1: container c1 not found");
    }
}
