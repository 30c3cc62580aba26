using System.Diagnostics;
using System.Text.Json;

namespace PodMigrate.Core.Tests.Grpc;

/// <summary>Our server against a real gRPC client: Debian's python3-grpcio (the C-core stack) over the unix socket.</summary>
[Trait("Category", "Integration")]
public sealed class GrpcioConformanceTests
{
    private const string Python = "/usr/bin/python3";

    [Fact(Timeout = 60_000)]
    public async Task Grpcio_client_sees_replies_streams_errors_and_deadlines()
    {
        if (!File.Exists(Python))
        {
            throw new InvalidOperationException($"{Python} is missing: install python3-grpcio (scripts/setup.sh)");
        }
        await using var server = await GrpcTestServer.StartAsync();

        var json = await RunClientAsync(server.SocketPath);
        using var results = JsonDocument.Parse(json);
        var root = results.RootElement;

        root.GetProperty("echo").GetProperty("text").GetString().ShouldBe("héllo from grpcio");
        root.GetProperty("echo").GetProperty("code").GetString().ShouldBe("OK");
        root.GetProperty("echo").GetProperty("trailers").GetProperty("x-echo-request-id").GetString().ShouldBe("py-1");
        root.GetProperty("count").EnumerateArray().Select(e => e.GetInt32()).ShouldBe(Enumerable.Range(1, 50));
        root.GetProperty("fail").GetProperty("code").GetString().ShouldBe("NOT_FOUND");
        root.GetProperty("fail").GetProperty("details").GetString().ShouldBe("pod «web» 100% gone");
        root.GetProperty("deadline").GetProperty("code").GetString().ShouldBe("DEADLINE_EXCEEDED");
        root.GetProperty("unknown").GetProperty("code").GetString().ShouldBe("UNIMPLEMENTED");
        // grpcio sent grpc-timeout: the server's token fired at the deadline.
        var hang = await server.Service.HangEnded.Task.WaitAsync(TimeSpan.FromSeconds(10));
        hang.DeadlinePassed.ShouldBeTrue();
    }

    private static async Task<string> RunClientAsync(string socketPath)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "Grpc", "grpcio_client.py");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(socketPath);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {Python}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(45));
        try
        {
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            process.ExitCode.ShouldBe(0, $"grpcio client failed: {await stderr}");
            return await stdout;
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }
}
