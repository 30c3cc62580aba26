using System.Globalization;
using System.Net.Sockets;
using Google.Protobuf;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Processes;

namespace PodMigrate.Node.Criu;

/// <summary>
/// One request to CRIU in swrk mode: <c>criu swrk &lt;fd&gt;</c> runs as our child with one end of a SOCK_SEQPACKET
/// socketpair inherited under that fd number; each request and each response is one packet holding one
/// serialized message (no length prefix).
/// </summary>
internal static class CriuSwrk
{
    /// <summary>A response never comes near this; a packet that fills it was truncated.</summary>
    private const int MaxResponseSize = 1024 * 1024;

    /// <summary>
    /// Serializes the moment the child's end is inheritable: any process this one starts meanwhile would inherit it
    /// too and keep the socket open after criu exits. (Other code starting processes at that instant can still race;
    /// the fd is only kept inheritable for the duration of one synchronous Process.Start.)
    /// </summary>
    private static readonly Lock InheritLock = new();

    /// <summary>Sends <paramref name="request"/>, answers NOTIFY callbacks, and returns CRIU's final response.</summary>
    public static async Task<criu_resp> CallAsync(
        CriuClientOptions options, criu_req request, Func<criu_notify, CancellationToken, Task>? onNotify, CancellationToken cancellationToken)
    {
        var (parentHandle, child) = CriuNative.SeqpacketPair();
        using var socket = new Socket(parentHandle);
        try
        {
            var spec = new ProcessSpec(options.CriuPath, ["swrk", child.DangerousGetHandle().ToInt32().ToString(CultureInfo.InvariantCulture)])
            {
                Timeout = options.Timeout,
            };
            Task<ProcessResult> run;
            lock (InheritLock)
            {
                CriuNative.SetCloseOnExec(child, closeOnExec: false);
                try
                {
                    // ProcessRunner starts the process before its first await, so the fd is inherited by now.
                    run = ProcessRunner.RunAsync(spec, cancellationToken);
                }
                finally
                {
                    CriuNative.SetCloseOnExec(child, closeOnExec: true);
                }
            }

            await socket.SendAsync(request.ToByteArray(), SocketFlags.None, cancellationToken);
            while (true)
            {
                var response = await ReceiveOrExitAsync(socket, child, run, spec, request.Type, cancellationToken);
                if (response.Type != criu_req_type.Notify)
                {
                    child.Dispose();
                    // criu exits once it has answered; its exit code adds nothing to the response.
                    await run;
                    return response;
                }
                if (onNotify is not null)
                {
                    await onNotify(response.Notify, cancellationToken);
                }
                var ack = new criu_req { Type = criu_req_type.Notify, NotifySuccess = true };
                await socket.SendAsync(ack.ToByteArray(), SocketFlags.None, cancellationToken);
            }
        }
        finally
        {
            child.Dispose();
        }
    }

    private static async Task<criu_resp> ReceiveOrExitAsync(
        Socket socket, Microsoft.Win32.SafeHandles.SafeFileHandle child, Task<ProcessResult> run, ProcessSpec spec, criu_req_type type, CancellationToken cancellationToken)
    {
        var receive = ReceiveAsync(socket, cancellationToken);
        if (await Task.WhenAny(receive, run) == run)
        {
            // criu is gone: drop our copy of its end so a pending receive sees EOF after any packet it sent last.
            child.Dispose();
        }
        var response = await receive;
        if (response is not null)
        {
            return response;
        }
        var result = await run;
        throw new PodMigrateException(
            ErrorKind.Internal,
            $"criu exited with code {result.ExitCode} without answering the {type} request (`{spec.DisplayCommand}`)",
            details: result.StandardError.Length > 0 ? result.StandardError : null);
    }

    private static async Task<criu_resp?> ReceiveAsync(Socket socket, CancellationToken cancellationToken)
    {
        // From the archive's pool: CRIU answers every request and notification of a dump or restore this way, and a fresh
        // 1 MiB array each time was large-object-heap garbage the soak saw swing the agents' committed heap.
        var buffer = ArchiveBuffers.Pool.Rent(MaxResponseSize);
        try
        {
            var received = await socket.ReceiveAsync(buffer.AsMemory(0, MaxResponseSize), SocketFlags.None, cancellationToken);
            if (received == 0)
            {
                return null;
            }
            if (received == MaxResponseSize)
            {
                throw new PodMigrateException(ErrorKind.ResourceExhausted, $"criu sent a response of {MaxResponseSize} bytes or more; it was truncated");
            }
            try
            {
                return criu_resp.Parser.ParseFrom(buffer, 0, received);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw new PodMigrateException(ErrorKind.Internal, $"criu sent a response that is not a criu_resp: {e.Message}", e);
            }
        }
        finally
        {
            ArchiveBuffers.Pool.Return(buffer);
        }
    }
}
