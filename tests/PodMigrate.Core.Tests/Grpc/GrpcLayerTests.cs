using System.Net;
using System.Net.Http.Headers;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tests.Grpc.TestProto;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>Our client against our server, over a real Kestrel on a unix socket and on TCP.</summary>
[Trait("Category", "Integration")]
public sealed class GrpcLayerTests : IAsyncLifetime
{
    private const int TestTimeout = 30_000;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private GrpcTestServer _server = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _server = await GrpcTestServer.StartAsync();
        _channel = GrpcChannel.ForUnixSocket(_server.SocketPath);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _server.DisposeAsync();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Unary_call_over_unix_socket_and_tcp_returns_the_reply()
    {
        using var tcp = GrpcChannel.ForAddress(_server.TcpAddress);

        var overUnix = await _channel.UnaryAsync(TestService.Echo, new EchoRequest { Text = "over unix" });
        var overTcp = await tcp.UnaryAsync(TestService.Echo, new EchoRequest { Text = "over tcp" });

        overUnix.Text.ShouldBe("over unix");
        overUnix.Peer.ShouldBe("unix:");
        overTcp.Text.ShouldBe("over tcp");
        overTcp.Peer.ShouldStartWith("ipv4:127.0.0.1:");
        _channel.Target.ShouldBe($"unix:{_server.SocketPath}");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Metadata_goes_both_ways()
    {
        var reply = await _channel.UnaryAsync(TestService.Echo, new EchoRequest(), new CallOptions(new Metadata().Add("X-Request-Id", "req-7")));
        var failure = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Fail, new FailRequest { Code = (int)StatusCode.Aborted, Message = "no" }));

        reply.RequestId.ShouldBe("req-7");
        failure.Trailers.GetValue("x-failure-id").ShouldBe("f-42");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Server_streaming_delivers_many_messages_in_order()
    {
        var received = new List<int>();
        await foreach (var reply in _channel.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 2000 }))
        {
            received.Add(reply.N);
        }

        received.ShouldBe(Enumerable.Range(1, 2000));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Server_streaming_yields_the_first_message_before_the_server_finishes()
    {
        var received = new List<int>();
        await foreach (var reply in _channel.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 3, WaitForRelease = true }))
        {
            if (reply.N == 1)
            {
                // The server is parked after its first write until we release it: seeing this message proves streaming.
                _server.Service.StreamFinished.Task.IsCompleted.ShouldBeFalse();
                _server.Service.StreamRelease.SetResult();
            }
            received.Add(reply.N);
        }

        received.ShouldBe([1, 2, 3]);
        await _server.Service.StreamFinished.Task.WaitAsync(Wait);
    }

    [Theory(Timeout = TestTimeout)]
    [InlineData(StatusCode.NotFound, "container \"ünïcødé ✓\" in namespace \"ns\": not found")]
    [InlineData(StatusCode.FailedPrecondition, "100% done, %41 stays %41, %zz, trailing %")]
    [InlineData(StatusCode.Internal, "line one\nline two\ttab 日本語")]
    [InlineData(StatusCode.Unauthenticated, "")]
    public async Task Status_code_and_message_round_trip(StatusCode code, string message)
    {
        var e = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Fail, new FailRequest { Code = (int)code, Message = message }));

        e.StatusCode.ShouldBe(code);
        e.Status.Detail.ShouldBe(message);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Error_before_any_message_is_a_trailers_only_response()
    {
        using var http = RawHttpClient();
        using var request = RawGrpcRequest("/podmigrate.test.v1.TestService/Fail", new FailRequest { Code = 5, Message = "gone 100%" });

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();

        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Headers.GetValues("grpc-status").ShouldBe(["5"]);
        response.Headers.GetValues("grpc-message").ShouldBe(["gone 100%25"]);
        body.ShouldBeEmpty();
        response.TrailingHeaders.Contains("grpc-status").ShouldBeFalse();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Streaming_error_before_the_first_message_reaches_the_client()
    {
        var received = new List<int>();
        var e = await Should.ThrowAsync<RpcException>(async () =>
        {
            await foreach (var reply in _channel.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 5, FailAfter = 0 }))
            {
                received.Add(reply.N);
            }
        });

        e.StatusCode.ShouldBe(StatusCode.DataLoss);
        received.ShouldBeEmpty();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Streaming_error_after_some_messages_comes_after_them()
    {
        var received = new List<int>();
        var e = await Should.ThrowAsync<RpcException>(async () =>
        {
            await foreach (var reply in _channel.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 10, FailAfter = 3 }))
            {
                received.Add(reply.N);
            }
        });

        received.ShouldBe([1, 2, 3]);
        e.StatusCode.ShouldBe(StatusCode.DataLoss);
        e.Status.Detail.ShouldBe("stream broke after 3 messages");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Unhandled_exception_is_Unknown_without_its_text_and_a_typed_one_goes_through_the_mapper()
    {
        var unhandled = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Fail, new FailRequest { ThrowUnhandled = true }));
        var typed = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Fail, new FailRequest { ThrowTyped = true, Message = "ck-1" }));

        unhandled.StatusCode.ShouldBe(StatusCode.Unknown);
        unhandled.Status.Detail.ShouldNotContain("secret");
        typed.StatusCode.ShouldBe(StatusCode.NotFound);
        typed.Status.Detail.ShouldBe("checkpoint ck-1 not found");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Deadline_fails_the_client_call_and_fires_the_server_token()
    {
        // Warm up (connection, JIT) so the call reaches the handler well within its deadline.
        await _channel.UnaryAsync(TestService.Echo, new EchoRequest());
        var started = TimeProvider.System.GetTimestamp();
        var deadline = DateTime.UtcNow.AddSeconds(1);

        var e = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Hang, new EchoRequest(), new CallOptions(Deadline: deadline)));
        await _server.Service.HangStarted.Task.WaitAsync(TimeSpan.Zero);
        // Our timer fires first and resets the stream, or the server's own deadline does: either way its token fires.
        var server = await _server.Service.HangEnded.Task.WaitAsync(Wait);

        e.StatusCode.ShouldBe(StatusCode.DeadlineExceeded);
        TimeProvider.System.GetElapsedTime(started).ShouldBeInRange(TimeSpan.FromMilliseconds(950), TimeSpan.FromSeconds(5));
        // The server's deadline comes from grpc-timeout, measured from when it got the call: close to ours, not before it.
        server.Deadline.ShouldBeInRange(deadline.AddMilliseconds(-5), deadline.AddSeconds(2));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Server_enforces_grpc_timeout_by_itself()
    {
        // A raw client that sends grpc-timeout but never gives up on its own: only the server's deadline ends the call.
        using var http = RawHttpClient();
        using var request = RawGrpcRequest("/podmigrate.test.v1.TestService/Hang", new EchoRequest());
        request.Headers.TryAddWithoutValidation("grpc-timeout", "300m");
        var started = TimeProvider.System.GetTimestamp();

        using var response = await http.SendAsync(request);
        var server = await _server.Service.HangEnded.Task.WaitAsync(Wait);

        response.Headers.GetValues("grpc-status").ShouldBe(["4"]);
        TimeProvider.System.GetElapsedTime(started).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(290));
        server.DeadlinePassed.ShouldBeTrue();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Status_after_the_deadline_is_DeadlineExceeded_whatever_the_server_said()
    {
        // containerd answers Unknown "context deadline exceeded" when a deadline passes: the client still says DeadlineExceeded.
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        using var channel = GrpcChannel.ForUnixSocket(_server.SocketPath, new GrpcChannelOptions { TimeProvider = clock });
        _server.Service.BeforeFail = () => clock.Advance(TimeSpan.FromMinutes(2));

        var e = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Fail,
            new FailRequest { Code = (int)StatusCode.Unknown, Message = "context deadline exceeded" },
            new CallOptions(Deadline: clock.GetUtcNow().UtcDateTime.AddMinutes(1))));

        e.StatusCode.ShouldBe(StatusCode.DeadlineExceeded);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Deadline_already_passed_fails_without_calling()
    {
        var e = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Hang, new EchoRequest(), new CallOptions(Deadline: DateTime.UtcNow.AddSeconds(-1))));

        e.StatusCode.ShouldBe(StatusCode.DeadlineExceeded);
        _server.Service.HangStarted.Task.IsCompleted.ShouldBeFalse();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Client_cancellation_is_Cancelled_and_resets_the_stream_the_server_sees()
    {
        using var cts = new CancellationTokenSource();
        var call = _channel.UnaryAsync(TestService.Hang, new EchoRequest(), new CallOptions(CancellationToken: cts.Token));
        await _server.Service.HangStarted.Task.WaitAsync(Wait);

        await cts.CancelAsync();
        var e = await Should.ThrowAsync<RpcException>(() => call);
        var server = await _server.Service.HangEnded.Task.WaitAsync(Wait);

        e.StatusCode.ShouldBe(StatusCode.Cancelled);
        server.DeadlinePassed.ShouldBeFalse();
        server.Deadline.ShouldBe(DateTime.MaxValue);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Disposing_a_stream_early_cancels_the_call_on_the_server()
    {
        await using (var stream = _channel.ServerStreamingAsync(TestService.Count, new CountRequest { Count = 3, WaitForRelease = true }).GetAsyncEnumerator())
        {
            (await stream.MoveNextAsync()).ShouldBeTrue();
            stream.Current.N.ShouldBe(1);
        }

        // The server was parked in WaitAsync(context.CancellationToken): only the stream reset can end it.
        await _server.Service.StreamCancelled.Task.WaitAsync(Wait);
        _server.Service.StreamFinished.Task.IsCompleted.ShouldBeFalse();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Unknown_method_and_unknown_service_are_Unimplemented()
    {
        var unknownMethod = new Method<EchoRequest, EchoReply>(MethodType.Unary, TestService.Descriptor.FullName, "Nope");
        var unknownService = new Method<EchoRequest, EchoReply>(MethodType.Unary, "nope.v1.Nope", "Echo");

        var method = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(unknownMethod, new EchoRequest()));
        var service = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(unknownService, new EchoRequest()));

        method.StatusCode.ShouldBe(StatusCode.Unimplemented);
        method.Status.Detail.ShouldBe("unknown method Nope for service podmigrate.test.v1.TestService");
        service.StatusCode.ShouldBe(StatusCode.Unimplemented);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Messages_over_the_size_limits_are_ResourceExhausted_on_both_sides()
    {
        using var small = GrpcChannel.ForUnixSocket(_server.SocketPath, new GrpcChannelOptions { MaxReceiveMessageSize = 1000 });

        var toServer = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(TestService.Echo, new EchoRequest { Text = new string('x', GrpcTestServer.MaxRequestSize + 1) }));
        var toClient = await Should.ThrowAsync<RpcException>(() => small.UnaryAsync(TestService.Echo, new EchoRequest { Text = new string('y', 2000) }));
        var fits = await small.UnaryAsync(TestService.Echo, new EchoRequest { Text = new string('z', 900) });

        toServer.StatusCode.ShouldBe(StatusCode.ResourceExhausted);
        toClient.StatusCode.ShouldBe(StatusCode.ResourceExhausted);
        toClient.Status.Detail.ShouldContain("vs. 1000");
        fits.Text.Length.ShouldBe(900);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Missing_unix_socket_is_Unavailable_naming_the_path()
    {
        var path = Path.Combine(Path.GetDirectoryName(_server.SocketPath)!, "missing.sock");
        using var channel = GrpcChannel.ForUnixSocket(path);

        var e = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        e.StatusCode.ShouldBe(StatusCode.Unavailable);
        e.Status.Detail.ShouldContain(path);
        e.Status.Detail.ShouldNotContain("Cannot assign requested address");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Refused_tcp_connection_is_Unavailable()
    {
        using var channel = GrpcChannel.ForAddress(new Uri("http://127.0.0.1:1"));

        var e = await Should.ThrowAsync<RpcException>(() => channel.UnaryAsync(TestService.Echo, new EchoRequest()));

        e.StatusCode.ShouldBe(StatusCode.Unavailable);
        e.Status.Detail.ShouldContain("127.0.0.1:1");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Compressed_frame_is_Internal_and_an_http_error_maps_per_the_grpc_table()
    {
        var compressed = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(new Method<EchoRequest, EchoReply>(MethodType.Unary, "raw.Service", "Compressed"), new EchoRequest()));
        var busy = await Should.ThrowAsync<RpcException>(() => _channel.UnaryAsync(new Method<EchoRequest, EchoReply>(MethodType.Unary, "raw.Service", "Busy"), new EchoRequest()));

        compressed.StatusCode.ShouldBe(StatusCode.Internal);
        compressed.Status.Detail.ShouldContain("compressed");
        busy.StatusCode.ShouldBe(StatusCode.Unavailable);
        busy.Status.Detail.ShouldContain("429");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Server_rejects_a_non_grpc_content_type_with_415()
    {
        using var http = RawHttpClient();
        using var request = RawGrpcRequest("/podmigrate.test.v1.TestService/Echo", new EchoRequest());
        request.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await http.SendAsync(request);

        response.StatusCode.ShouldBe(HttpStatusCode.UnsupportedMediaType);
        response.Headers.GetValues("grpc-status").ShouldBe(["13"]);
    }

    private HttpClient RawHttpClient() => new()
    {
        BaseAddress = _server.TcpAddress,
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private static HttpRequestMessage RawGrpcRequest(string path, Google.Protobuf.IMessage message)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(GrpcFraming.ToFrame(message)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        return request;
    }

    /// <summary>A clock that moves only when told (its timers are real ones, far longer than these tests).</summary>
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private long _ticks = now.UtcTicks;

        public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Duplex_call_gets_answers_while_it_is_still_sending_and_ends_with_the_status()
    {
        var method = new Method<EchoRequest, EchoReply>(MethodType.DuplexStreaming, "raw.Service", "EchoStream");
        using var call = _channel.DuplexStreaming(method);

        // Each answer is read before the next request is written: the call is full duplex, not buffered.
        for (var i = 0; i < 300; i++)
        {
            await call.WriteAsync(new EchoRequest { Text = new string('x', i * 100) + i });
            var reply = (await call.ReadNextAsync().AsTask().WaitAsync(Wait)).ShouldNotBeNull();
            reply.Text.ShouldEndWith(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        call.CompleteRequests();

        (await call.ReadNextAsync()).ShouldBeNull("the server ends the call once the requests end");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Duplex_call_that_the_server_ends_early_fails_writes_and_reads_with_its_status()
    {
        var method = new Method<EchoRequest, EchoReply>(MethodType.DuplexStreaming, "raw.Service", "RefuseAfterTwo");
        using var call = _channel.DuplexStreaming(method);
        var payload = new EchoRequest { Text = new string('y', 64 * 1024) };

        var failure = await Should.ThrowAsync<RpcException>(async () =>
        {
            for (var i = 0; i < 1000; i++)
            {
                await call.WriteAsync(payload);
            }
        });
        var read = await Should.ThrowAsync<RpcException>(async () => await call.ReadNextAsync());

        failure.StatusCode.ShouldBe(StatusCode.ResourceExhausted, failure.Status.Detail);
        failure.Status.Detail.ShouldBe("no space left");
        read.StatusCode.ShouldBe(StatusCode.ResourceExhausted);
    }

    [Fact]
    public void Only_duplex_methods_make_duplex_calls()
    {
        Should.Throw<ArgumentException>(() => _channel.DuplexStreaming(TestService.Echo));
        Method.FromDescriptor<EchoRequest, EchoReply>(TestService.Descriptor, "Echo").Type.ShouldBe(MethodType.Unary);
    }

}
