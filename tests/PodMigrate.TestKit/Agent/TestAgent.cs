using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using PodMigrate.Agent;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Tls;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.TestKit.Agent;

/// <summary>Where a test agent keeps its things: its own socket, share and state, so tests never share an agent's state.</summary>
public sealed record TestAgentLayout(string Node, string ContainerdSocket, string Directory, string? Share = null)
{
    /// <summary>A free loopback port for /metrics, or 0 for none.</summary>
    public int MetricsPort { get; init; }

    /// <summary>A TCP port for the gRPC API (e.g. <see cref="FreePort"/>), or 0 for the unix socket only.</summary>
    public int GrpcPort { get; init; }

    /// <summary>The address the TCP port binds to.</summary>
    public string ListenAddress { get; init; } = "127.0.0.1";

    /// <summary>A TLS directory (tls.crt, tls.key, ca.crt): the TCP port then serves mutual TLS only.</summary>
    public string? TlsDirectory { get; init; }

    /// <summary>
    /// The agent's checkpoint-signing directory (tls.crt and tls.key sign, ca.crt is trusted); by default the node's
    /// directory of the test run's signing CA (<see cref="TestSigning"/>), so agents of one test trust each other.
    /// Null: the agent's TLS material, or none.
    /// </summary>
    public string? SigningDirectory { get; init; }

    /// <summary>Development mode: the agent accepts unsigned checkpoints.</summary>
    public bool AllowUnsignedCheckpoints { get; init; }
    /// <summary>More options for an in-process agent (e.g. a <see cref="AgentOptions.CommitPointHook"/>), applied last.</summary>
    public Action<AgentOptions>? Customize { get; init; }

    /// <summary>More environment for an agent process (e.g. PODMIGRATE_AGENT__FAULTEXITAT, see CommitPointProbe).</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public string Socket => Path.Combine(Directory, "agent.sock");

    public string ShareRoot => Share ?? Path.Combine(Directory, "share");

    public string StateDirectory => Path.Combine(Directory, "state");

    /// <summary>Where checkpoints are prepared for the podmigrate runtime handler (a cluster node's own, so its runtime finds them).</summary>
    public string? PreparedDirectory { get; init; }

    public string PreparedPath => PreparedDirectory ?? Path.Combine(Directory, "prepared");

    /// <summary>The node has the podmigrate runtime handler though its runtime does not list handlers (containerd 1.7).</summary>
    public bool RestoreRuntime { get; init; }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static TestAgentLayout ForNode(string node, string containerdSocket, string? share = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"pm-agent-{node}-{Guid.NewGuid():N}"[..32]);
        System.IO.Directory.CreateDirectory(directory);
        return new TestAgentLayout(node, containerdSocket, directory, share) { SigningDirectory = TestSigning.Shared.AgentDirectory(node) };
    }

    public void Apply(AgentOptions options)
    {
        options.NodeName = Node;
        options.ContainerdSocket = ContainerdSocket;
        options.UnixSocket = Socket;
        options.GrpcPort = GrpcPort;
        options.MetricsPort = MetricsPort;
        options.ListenAddress = ListenAddress;
        options.TlsDirectory = TlsDirectory ?? "";
        options.ShareRoot = ShareRoot;
        options.StateDirectory = StateDirectory;
        options.KeepPerPod = 0;
        if (SigningDirectory is not null)
        {
            options.CheckpointSigningCertificateFile = Path.Combine(SigningDirectory, TlsFileNames.Certificate);
            options.CheckpointSigningKeyFile = Path.Combine(SigningDirectory, TlsFileNames.Key);
            options.CheckpointTrustFile = Path.Combine(SigningDirectory, TlsFileNames.CaBundle);
        }
        options.AllowUnsignedCheckpoints = AllowUnsignedCheckpoints;
        options.PreparedDirectory = PreparedPath;
        options.RestoreRuntimeInstalled = RestoreRuntime;
        Customize?.Invoke(options);
    }
}

/// <summary>An agent a test reaches through its API only: in the test process or as its own process.</summary>
public interface ITestAgent : IAsyncDisposable
{
    TestAgentLayout Layout { get; }

    AgentClient Client { get; }
}

/// <summary>Starts the agent a test talks to through its API.</summary>
public static class TestAgent
{
    /// <summary>
    /// With $PODMIGRATE_AGENT_BIN (scripts/test.sh: podmigrate-agent published NativeAOT, the binary that ships) that
    /// binary as its own process, else an agent in the test process. A layout with a <see cref="TestAgentLayout.Customize"/>
    /// hook runs in the test process always: the hook is test code inside the agent.
    /// </summary>
    public static async Task<ITestAgent> StartAsync(TestAgentLayout layout, CancellationToken cancellationToken)
        => AgentBinary.Published is not null && layout.Customize is null
            ? await AgentProcess.StartAsync(layout, cancellationToken)
            : await InProcessAgent.StartAsync(layout, cancellationToken);
}

/// <summary>A real agent (Kestrel, gRPC over a unix socket) hosted in the test process, against a node's containerd.</summary>
public sealed class InProcessAgent : ITestAgent
{
    private readonly WebApplication _app;

    private InProcessAgent(WebApplication app, TestAgentLayout layout)
    {
        _app = app;
        Layout = layout;
        Client = AgentClient.Connect(layout.Socket);
    }

    public TestAgentLayout Layout { get; }

    public AgentClient Client { get; }

    public static async Task<InProcessAgent> StartAsync(TestAgentLayout layout, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(layout.ShareRoot);
        var app = AgentHost.Build(["--Logging:LogLevel:Default=Warning"], layout.Apply);
        await app.StartAsync(cancellationToken);
        return new InProcessAgent(app, layout);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}

/// <summary>
/// The agent as its own process (<see cref="AgentBinary"/>: podmigrate-agent NativeAOT or `podmigrate agent`), for what an in-process agent cannot show: being killed mid-operation
/// and a new agent picking up what the dead one left.
/// </summary>
public sealed class AgentProcess : ITestAgent
{
    private readonly Process _process;

    private AgentProcess(Process process, TestAgentLayout layout)
    {
        _process = process;
        Layout = layout;
        Client = AgentClient.Connect(layout.Socket);
    }

    public TestAgentLayout Layout { get; }

    public AgentClient Client { get; }

    public int Pid => _process.Id;

    public static async Task<AgentProcess> StartAsync(TestAgentLayout layout, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(layout.ShareRoot);
        // $PODMIGRATE_AGENT_BIN (podmigrate-agent published NativeAOT, as the DaemonSet's image runs it) or the CLI's `agent` verb.
        var start = AgentBinary.StartInfo(
            [
                "agent", "--node", layout.Node, "--containerd-socket", layout.ContainerdSocket, "--socket", layout.Socket,
                "--port", layout.GrpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--listen", layout.ListenAddress,
                "--share", layout.ShareRoot, "--state-dir", layout.StateDirectory,
            ]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.ArgumentList.Add("--prepared-dir");
        start.ArgumentList.Add(layout.PreparedPath);
        if (layout.RestoreRuntime)
        {
            start.ArgumentList.Add("--restore-runtime");
        }
        if (layout.TlsDirectory is not null)
        {
            start.ArgumentList.Add("--tls-dir");
            start.ArgumentList.Add(layout.TlsDirectory);
        }
        if (layout.SigningDirectory is not null)
        {
            start.ArgumentList.Add("--checkpoint-signing-cert");
            start.ArgumentList.Add(Path.Combine(layout.SigningDirectory, TlsFileNames.Certificate));
            start.ArgumentList.Add("--checkpoint-signing-key");
            start.ArgumentList.Add(Path.Combine(layout.SigningDirectory, TlsFileNames.Key));
            start.ArgumentList.Add("--checkpoint-trust");
            start.ArgumentList.Add(Path.Combine(layout.SigningDirectory, TlsFileNames.CaBundle));
        }
        if (layout.AllowUnsignedCheckpoints)
        {
            start.ArgumentList.Add("--allow-unsigned-checkpoints");
        }
        if (layout.MetricsPort != 0)
        {
            start.ArgumentList.Add("--metrics-port");
            start.ArgumentList.Add(layout.MetricsPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        if (layout.Customize is not null)
        {
            throw new ArgumentException("a Customize hook runs inside the agent: start the agent in the test process (InProcessAgent)", nameof(layout));
        }
        // As TestAgentLayout.Apply sets it for an agent in the test process: no retention (tests own their shares).
        start.Environment["PODMIGRATE_AGENT__KeepPerPod"] = "0";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (name, value) in layout.Environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the agent process");
        // The last lines of its stderr, for a process that exits before it serves.
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                errors.Enqueue(e.Data);
                while (errors.Count > 40 && errors.TryDequeue(out string? _))
                {
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var agent = new AgentProcess(process, layout);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                process.WaitForExit();
                throw new InvalidOperationException(
                    $"the agent process ({string.Join(' ', start.FileName, start.ArgumentList[0])}) exited with {process.ExitCode} before serving:\n{string.Join('\n', errors)}");
            }
            try
            {
                await agent.Client.HealthAsync(cancellationToken);
                return agent;
            }
            catch (PodMigrateException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    /// <summary>Until the process has exited on its own (e.g. killed by its own fault injection).</summary>
    public Task ExitedAsync(CancellationToken cancellationToken) => _process.WaitForExitAsync(cancellationToken);

    /// <summary>SIGKILL: the agent gets no chance to clean up, as when a node's agent pod is OOM-killed.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
