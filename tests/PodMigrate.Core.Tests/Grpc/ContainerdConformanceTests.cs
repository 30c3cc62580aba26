using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Containerd.Services.Containers.V1;
using Containerd.Services.Content.V1;
using Containerd.Services.Version.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;
using PodMigrate.TestKit.Containerd;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>One private containerd for the class; each test works in its own containerd namespace.</summary>
public sealed class ContainerdFixture : IAsyncLifetime
{
    public StandaloneContainerd Containerd { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        Containerd = await StandaloneContainerd.StartAsync(timeout.Token);
        Channel = Containerd.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        Channel?.Dispose();
        if (Containerd is not null)
        {
            await Containerd.DisposeAsync();
        }
    }
}

/// <summary>grpc-dotnet on our unix-socket channel against a real gRPC server: containerd 2.1.9 (grpc-go).</summary>
[Trait("Category", "Integration")]
[Trait("Requires", "Root")]
[Trait("Requires", "Containerd")]
public sealed class ContainerdConformanceTests(ContainerdFixture fixture) : IClassFixture<ContainerdFixture>
{
    private const int TestTimeout = 60_000;
    private const string SpecTypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

    // events.proto is not compiled here: an empty SubscribeRequest (no filters) and Envelopes read as Empty with
    // unknown fields are the same bytes on the wire, and this is the one containerd call that blocks until cancelled.
    private static readonly Method<Empty, Empty> SubscribeEvents = new(
        MethodType.ServerStreaming, "containerd.services.events.v1.Events", "Subscribe",
        Marshallers.Create(m => m.ToByteArray(), Empty.Parser.ParseFrom), Marshallers.Create(m => m.ToByteArray(), Empty.Parser.ParseFrom));

    private static readonly string MissingDigest = "sha256:" + new string('0', 64);

    private GrpcChannel Channel => fixture.Channel;

    private global::Containerd.Services.Version.V1.Version.VersionClient VersionClient => new(Channel);

    private global::Containerd.Services.Containers.V1.Containers.ContainersClient ContainersClient => new(Channel);

    private global::Containerd.Services.Content.V1.Content.ContentClient ContentClient => new(Channel);

    [Fact(Timeout = TestTimeout)]
    public async Task Version_is_2_1()
    {
        var version = await VersionClient.VersionAsync(new Empty());

        version.Version.ShouldStartWith("2.1");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Containers_round_trip_in_the_namespace_the_header_names()
    {
        var ns = Namespace();
        var other = Namespace();
        var container = new Container
        {
            Id = "grpc-conformance",
            Runtime = new Container.Types.Runtime { Name = "io.containerd.runc.v2" },
            Spec = new Any { TypeUrl = SpecTypeUrl, Value = ByteString.CopyFromUtf8("{}") },
            Labels = { ["podmigrate.test"] = "ünïcødé" },
        };

        await ContainersClient.CreateAsync(new CreateContainerRequest { Container = container }, In(ns));
        var listed = await ContainersClient.ListAsync(new ListContainersRequest(), In(ns));
        var elsewhere = await ContainersClient.ListAsync(new ListContainersRequest(), In(other));
        var got = await ContainersClient.GetAsync(new GetContainerRequest { Id = container.Id }, In(ns));
        await ContainersClient.DeleteAsync(new DeleteContainerRequest { Id = container.Id }, In(ns));
        var afterDelete = await ContainersClient.ListAsync(new ListContainersRequest(), In(ns));

        listed.Containers.Select(c => c.Id).ShouldBe([container.Id]);
        elsewhere.Containers.ShouldBeEmpty();
        got.Container.Labels["podmigrate.test"].ShouldBe("ünïcødé");
        got.Container.Runtime.Name.ShouldBe("io.containerd.runc.v2");
        afterDelete.Containers.ShouldBeEmpty();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Missing_container_is_NotFound_with_containerds_message()
    {
        var ns = Namespace();

        var e = await Should.ThrowAsync<RpcException>(async () => await ContainersClient.GetAsync(new GetContainerRequest { Id = "nope" }, In(ns)));

        e.StatusCode.ShouldBe(StatusCode.NotFound);
        e.Status.Detail.ShouldBe($"container \"nope\" in namespace \"{ns}\": not found");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Call_without_namespace_header_is_FailedPrecondition()
    {
        var e = await Should.ThrowAsync<RpcException>(async () => await ContainersClient.ListAsync(new ListContainersRequest()));

        e.StatusCode.ShouldBe(StatusCode.FailedPrecondition);
        e.Status.Detail.ShouldContain("namespace is required");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Content_read_of_a_missing_blob_fails_the_stream_before_any_message()
    {
        var ns = Namespace();
        var received = 0;

        var e = await Should.ThrowAsync<RpcException>(async () =>
        {
            using var call = ContentClient.Read(new ReadContentRequest { Digest = MissingDigest }, In(ns));
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
                received++;
            }
        });

        received.ShouldBe(0);
        e.StatusCode.ShouldBe(StatusCode.NotFound);
        e.Status.Detail.ShouldContain(MissingDigest);
        e.Status.Detail.ShouldContain("not found");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Content_read_error_is_sent_as_a_trailers_only_response()
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(fixture.Containerd.SocketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://localhost/containerd.services.content.v1.Content/Read")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(Frame(new ReadContentRequest { Digest = MissingDigest })),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation("containerd-namespace", Namespace());

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsByteArrayAsync();

        response.Headers.GetValues("grpc-status").ShouldBe(["5"]);
        body.ShouldBeEmpty();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Deadline_ends_a_blocking_stream_with_DeadlineExceeded()
    {
        var started = Stopwatch.StartNew();

        var e = await Should.ThrowAsync<RpcException>(async () =>
        {
            using var call = Channel.CreateCallInvoker().AsyncServerStreamingCall(SubscribeEvents, null, new CallOptions(deadline: DateTime.UtcNow.AddMilliseconds(500)), new Empty());
            await foreach (var _ in call.ResponseStream.ReadAllAsync())
            {
            }
        });

        e.StatusCode.ShouldBe(StatusCode.DeadlineExceeded);
        started.Elapsed.ShouldBeInRange(TimeSpan.FromMilliseconds(450), TimeSpan.FromSeconds(20));
    }

    [Fact(Timeout = TestTimeout)]
    public async Task A_long_deadline_is_accepted_and_the_call_succeeds()
    {
        var version = await VersionClient.VersionAsync(new Empty(), deadline: DateTime.UtcNow.AddHours(1));

        version.Version.ShouldNotBeEmpty();
    }

    [Fact(Timeout = TestTimeout)]
    public async Task Events_stream_yields_each_event_as_it_happens_and_cancellation_is_Cancelled()
    {
        var ns = Namespace();
        using var cts = new CancellationTokenSource();
        using var call = Channel.CreateCallInvoker().AsyncServerStreamingCall(SubscribeEvents, null, new CallOptions(cancellationToken: cts.Token), new Empty());
        var events = call.ResponseStream;
        var next = events.MoveNext();

        // The subscription is registered some time after the call starts: make events until one comes through.
        for (var i = 0; i < 50 && !next.IsCompleted; i++)
        {
            await ContainersClient.CreateAsync(new CreateContainerRequest
            {
                Container = new Container
                {
                    Id = $"event-{i}",
                    Runtime = new Container.Types.Runtime { Name = "io.containerd.runc.v2" },
                    Spec = new Any { TypeUrl = SpecTypeUrl, Value = ByteString.CopyFromUtf8("{}") },
                },
            }, In(ns));
            await Task.WhenAny(next, Task.Delay(100));
        }
        (await next.WaitAsync(TimeSpan.FromSeconds(10))).ShouldBeTrue();

        await cts.CancelAsync();
        var e = await Should.ThrowAsync<RpcException>(async () =>
        {
            while (await events.MoveNext())
            {
            }
        });

        e.StatusCode.ShouldBe(StatusCode.Cancelled);
    }

    private static string Namespace() => $"pm-test-{Guid.NewGuid():N}"[..20];

    private static Metadata In(string ns) => new() { { "containerd-namespace", ns } };

    /// <summary>One gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes.</summary>
    private static byte[] Frame(IMessage message)
    {
        var body = message.ToByteArray();
        var frame = new byte[5 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), body.Length);
        body.CopyTo(frame, 5);
        return frame;
    }
}
