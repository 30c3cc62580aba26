using Google.Protobuf;
using PodMigrate.Core.Errors;
using Api = Containerd.Services.Content.V1;
using Empty = Google.Protobuf.WellKnownTypes.Empty;
using FieldMask = Google.Protobuf.WellKnownTypes.FieldMask;

namespace PodMigrate.Node.Containerd;

/// <summary>
/// Writing into containerd's content store: blobs streamed through the Content API's Write call into an ingest, which
/// becomes content only when committed with its size and digest; labels (the garbage collector's references); ingests.
/// Write under a lease (see <see cref="ContainerdLeases.Under"/>) until an image references what was written.
/// </summary>
public sealed class ContainerdContent(ContainerdConnection connection)
{
    private readonly Api.Content.ContentClient _content = new(connection.Invoker);

    /// <summary>Label on a manifest naming a blob it keeps alive (suffix: "config", "l.0", …).</summary>
    public const string GcContentReferencePrefix = "containerd.io/gc.ref.content.";

    /// <summary>Label on an image config naming the snapshot its layers unpack to (suffix: the snapshotter).</summary>
    public const string GcSnapshotReferencePrefix = "containerd.io/gc.ref.snapshot.";


    /// <summary>
    /// Starts writing a blob into the ingest <paramref name="ingestRef"/> (unique per writer: containerd locks it).
    /// Nothing is content until <see cref="ContainerdIngestStream.CommitAsync"/>; disposing an uncommitted writer
    /// aborts the ingest. <paramref name="timeout"/> bounds the whole write.
    /// </summary>
    public ContainerdIngestStream OpenWriter(string ingestRef, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(ingestRef);
        var call = connection.DuplexStreaming(o => _content.Write(o), new ContainerdCall($"writing content {ingestRef}", timeout), cancellationToken);
        return new ContainerdIngestStream(this, call, ingestRef, cancellationToken);
    }

    /// <summary>
    /// Writes a small blob whole and commits it with <paramref name="labels"/>. True when written; false when the store
    /// already had it (its labels are then set to <paramref name="labels"/>, which a commit of existing content skips).
    /// </summary>
    public async Task<bool> WriteBlobAsync(string ingestRef, ReadOnlyMemory<byte> content, string digest, IReadOnlyDictionary<string, string>? labels, CancellationToken cancellationToken)
    {
        var writer = OpenWriter(ingestRef, TimeSpan.FromSeconds(30), cancellationToken);
        await using (writer)
        {
            await writer.WriteAsync(content, cancellationToken);
            if (await writer.CommitAsync(digest, labels, cancellationToken))
            {
                return true;
            }
        }
        if (labels is { Count: > 0 })
        {
            await SetLabelsAsync(digest, labels, cancellationToken);
        }
        return false;
    }

    /// <summary>Sets (adds or replaces) labels of a blob, leaving its other labels as they are.</summary>
    public async Task SetLabelsAsync(string digest, IReadOnlyDictionary<string, string> labels, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var request = new Api.UpdateRequest { Info = new Api.Info { Digest = digest }, UpdateMask = new FieldMask() };
        foreach (var (key, value) in labels)
        {
            request.Info.Labels[key] = value;
            request.UpdateMask.Paths.Add("labels." + key);
        }
        await connection.UnaryAsync(o => _content.UpdateAsync(request, o), new ContainerdCall($"labelling content {digest}"), cancellationToken);
    }

    /// <summary>Drops an ingest and what it holds; one that does not exist is no error.</summary>
    public async Task AbortAsync(string ingestRef, CancellationToken cancellationToken)
    {
        try
        {
            await connection.UnaryAsync(o => _content.AbortAsync(new Api.AbortRequest { Ref = ingestRef }, o), new ContainerdCall($"aborting content ingest {ingestRef}"), cancellationToken);
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.NotFound)
        {
        }
    }

    /// <summary>The ingests in progress (writes not committed or aborted yet).</summary>
    public async Task<IReadOnlyList<Api.Status>> ListIngestsAsync(CancellationToken cancellationToken)
    {
        var response = await connection.UnaryAsync(o => _content.ListStatusesAsync(new Api.ListStatusesRequest(), o), new ContainerdCall("listing content ingests"), cancellationToken);
        return response.Statuses;
    }
}

/// <summary>
/// One blob being written into containerd's content store: each write is sent as a Write message of its own (callers
/// write in chunks well under containerd's 16 MiB message limit) without waiting for the answer, which a reader takes
/// as it comes; a failure on containerd's side (disk full, lost ingest) surfaces at the next write or at the commit.
/// Only forward, asynchronous writes.
/// </summary>
public sealed class ContainerdIngestStream : Stream
{
    private static readonly TimeSpan AbortTimeout = TimeSpan.FromSeconds(10);

    private readonly ContainerdContent _content;
    private readonly ContainerdDuplexCall<Api.WriteContentRequest, Api.WriteContentResponse> _call;
    private readonly CancellationToken _cancellationToken;
    private readonly Task<Api.WriteContentResponse?> _responses;
    private long _offset;
    private bool _committed;
    private bool _disposed;

    internal ContainerdIngestStream(ContainerdContent content, ContainerdDuplexCall<Api.WriteContentRequest, Api.WriteContentResponse> call, string ingestRef, CancellationToken cancellationToken)
    {
        _content = content;
        _call = call;
        _cancellationToken = cancellationToken;
        IngestRef = ingestRef;
        // containerd answers every message; reading the answers as they come keeps its sends (and so its reads) flowing.
        _responses = ReadResponsesAsync();
    }

    public string IngestRef { get; }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => !_disposed && !_committed;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _offset;
        set => throw new NotSupportedException();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed)
        {
            throw new InvalidOperationException($"content ingest {IngestRef} is committed");
        }
        cancellationToken.ThrowIfCancellationRequested();
        if (buffer.IsEmpty)
        {
            return;
        }
        // The bytes are framed before the send returns, so the caller's buffer need not be copied into a ByteString first.
        await SendAsync(NewRequest(Api.WriteAction.Write, UnsafeByteOperations.UnsafeWrap(buffer)));
        _offset += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>
    /// Makes the ingest content, provided containerd counted the bytes written and hashed them to
    /// <paramref name="digest"/> (else it refuses, and nothing is content). True when committed; false when the store
    /// already had a blob with that digest (containerd then drops the ingest, and <paramref name="labels"/> are not applied).
    /// </summary>
    public async Task<bool> CommitAsync(string digest, IReadOnlyDictionary<string, string>? labels, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(digest);
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        var request = NewRequest(Api.WriteAction.Commit, ByteString.Empty);
        request.Total = _offset;
        request.Expected = digest;
        foreach (var (key, value) in labels ?? new Dictionary<string, string>())
        {
            request.Labels[key] = value;
        }
        try
        {
            await SendAsync(request);
            await _call.CompleteRequestsAsync();
            var last = await _responses.WaitAsync(cancellationToken);
            _committed = true;
            if (last is null || last.Action != Api.WriteAction.Commit || last.Digest != digest || last.Offset != _offset)
            {
                throw new PodMigrateException(ErrorKind.Internal,
                    $"content ingest {IngestRef}: containerd answered the commit of {_offset} bytes as {digest} with {last?.Action.ToString() ?? "nothing"} at offset {last?.Offset} as {last?.Digest}");
            }
            return true;
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.AlreadyExists)
        {
            _committed = true;
            return false;
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("content is written asynchronously");

    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("this stream is write-only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>An uncommitted writer is cancelled and its ingest aborted (with a timeout of its own: the caller's token may be what failed).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _call.Dispose();
        try
        {
            await _responses;
        }
        catch (Exception e) when (e is PodMigrateException or OperationCanceledException)
        {
            // The call's end was already reported to the writer, or it is ended here.
        }
        if (!_committed)
        {
            using var timeout = new CancellationTokenSource(AbortTimeout);
            await _content.AbortAsync(IngestRef, timeout.Token);
        }
        await base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            // Synchronous disposal cannot abort the ingest over gRPC; the call is cancelled, and containerd drops the
            // ingest with the lease it was written under.
            _disposed = true;
            _call.Dispose();
        }
        base.Dispose(disposing);
    }

    private Api.WriteContentRequest NewRequest(Api.WriteAction action, ByteString data)
    {
        var request = new Api.WriteContentRequest { Action = action, Offset = _offset, Data = data };
        if (_offset == 0)
        {
            // containerd takes the ingest from the first message of the call.
            request.Ref = IngestRef;
        }
        return request;
    }

    private async Task SendAsync(Api.WriteContentRequest request)
    {
        if (_responses.IsFaulted)
        {
            // containerd ended the call: its status says why.
            await _responses;
        }
        try
        {
            await _call.WriteAsync(request);
        }
        catch (PodMigrateException) when (_responses.IsCompleted)
        {
            await _responses;
            throw;
        }
    }

    private async Task<Api.WriteContentResponse?> ReadResponsesAsync()
    {
        Api.WriteContentResponse? last = null;
        while (await _call.ReadNextAsync() is { } response)
        {
            last = response;
        }
        return last;
    }
}
