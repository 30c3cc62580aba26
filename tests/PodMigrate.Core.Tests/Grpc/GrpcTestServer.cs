using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tests.Grpc.TestProto;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>
/// A real Kestrel server (not TestHost) serving <see cref="TestService"/> on a unix socket in its own temp dir and on
/// 127.0.0.1 with a free port, plus raw endpoints that misbehave the ways a client must survive.
/// </summary>
internal sealed class GrpcTestServer : IAsyncDisposable
{
    public const int MaxRequestSize = 1024 * 1024;

    private readonly WebApplication _app;
    private readonly string _directory;

    private GrpcTestServer(WebApplication app, string directory, string socketPath, Uri tcpAddress, TestService service)
    {
        _app = app;
        _directory = directory;
        SocketPath = socketPath;
        TcpAddress = tcpAddress;
        Service = service;
    }

    public string SocketPath { get; }

    public Uri TcpAddress { get; }

    public TestService Service { get; }

    /// <summary>With <paramref name="tcpCredentials"/> the TCP endpoint serves that (e.g. mutual TLS) instead of h2c.</summary>
    public static async Task<GrpcTestServer> StartAsync(ServerCredentials? tcpCredentials = null)
    {
        var directory = Directory.CreateTempSubdirectory("pm-grpc-").FullName;
        var socketPath = Path.Combine(directory, "test.sock");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel
            .ListenGrpcUnixSocket(socketPath)
            .ListenGrpcTcp(new IPEndPoint(IPAddress.Loopback, 0), tcpCredentials));
        var app = builder.Build();
        var service = new TestService();
        app.MapGrpcService(service.Definition(), new GrpcServerOptions { MaxReceiveMessageSize = MaxRequestSize, ExceptionMapper = ErrorMapping.ToStatus });
        app.MapPost("/raw.Service/Compressed", async http =>
        {
            http.Response.ContentType = "application/grpc";
            await http.Response.Body.WriteAsync(new byte[] { 1, 0, 0, 0, 0 });
            http.Response.AppendTrailer("grpc-status", "0");
        });
        app.MapPost("/raw.Service/Busy", http =>
        {
            http.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Task.CompletedTask;
        });
        // Duplex: each request frame is answered as soon as it is read, while the client is still sending.
        app.MapPost("/raw.Service/EchoStream", async http =>
        {
            http.Response.ContentType = "application/grpc";
            await http.Response.StartAsync();
            var reader = System.IO.Pipelines.PipeReader.Create(http.Request.Body);
            while (await GrpcFraming.ReadMessageAsync(reader, EchoRequest.Parser, MaxRequestSize, http.RequestAborted) is { } request)
            {
                await http.Response.Body.WriteAsync(GrpcFraming.ToFrame(new EchoReply { Text = request.Text }));
                await http.Response.Body.FlushAsync();
            }
            http.Response.AppendTrailer("grpc-status", "0");
        });
        // Duplex: two requests are read, then the call ends with a status while the client may still be sending.
        app.MapPost("/raw.Service/RefuseAfterTwo", async http =>
        {
            http.Response.ContentType = "application/grpc";
            var reader = System.IO.Pipelines.PipeReader.Create(http.Request.Body);
            for (var i = 0; i < 2; i++)
            {
                await GrpcFraming.ReadMessageAsync(reader, EchoRequest.Parser, MaxRequestSize, http.RequestAborted);
            }
            http.Response.Headers["grpc-status"] = "8";
            http.Response.Headers["grpc-message"] = "no%20space%20left";
        });
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        var tcp = addresses.Single(a => a.StartsWith("http://127.0.0.1:", StringComparison.Ordinal) || a.StartsWith("https://127.0.0.1:", StringComparison.Ordinal));
        return new GrpcTestServer(app, directory, socketPath, new Uri(tcp), service);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
