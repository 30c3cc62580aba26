using System.Net.Sockets;
using PodMigrate.Core.Errors;
using PodMigrate.TestKit.Agent;
using PodMigrate.TestKit.Cli;

namespace PodMigrate.Integration.Tests.Agent;

/// <summary>
/// `podmigrate agent` (the CLI) and `podmigrate-agent agent` (PodMigrate.Agent.Host, published NativeAOT when
/// $PODMIGRATE_AGENT_BIN names it) fail at start with the same exit code and message for the same error: both run the
/// verb through <see cref="ExitCodes.RunAsync(Func{Task{int}}, CancellationToken)"/>.
/// </summary>
[Trait("Category", "Integration")]
public sealed class AgentExitCodeTests : IDisposable
{
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("pm-agent-exit-");

    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromMinutes(2));

    private CancellationToken Token => _timeout.Token;

    [Fact(Timeout = 120_000)]
    public async Task Both_binaries_exit_with_the_code_of_the_error_kind()
    {
        // A socket some live process serves on: the agent refuses to take it over (AlreadyExists).
        var socket = Path.Combine(_directory.FullName, "agent.sock");
        using var live = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        live.Bind(new UnixDomainSocketEndPoint(socket));
        live.Listen();
        string[] common = ["agent", "--node", "node-a", "--share", Path.Combine(_directory.FullName, "share"), "--state-dir", Path.Combine(_directory.FullName, "state"),
            "--containerd-socket", Path.Combine(_directory.FullName, "containerd.sock"), "--allow-unsigned-checkpoints"];
        string[] taken = [.. common, "--socket", socket, "--port", "0"];
        // Cleartext on a TCP port beyond loopback without --insecure-tcp: a usage error (InvalidArgument).
        string[] cleartext = [.. common, "--socket", Path.Combine(_directory.FullName, "other.sock"),
            "--port", TestAgentLayout.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), "--listen", "0.0.0.0"];

        foreach (var (arguments, code, message) in new[]
            {
                (taken, ExitCodes.AlreadyExists, $"another agent is already serving on {socket}"),
                (cleartext, ExitCodes.Usage, "agent options: refusing to serve the agent API in cleartext on 0.0.0.0"),
            })
        {
            var cli = await PodmigrateCli.RunAsync(arguments, Token);
            var host = await AgentBinary.RunAsync(arguments, Token, AgentBinary.HostCommand);

            foreach (var (name, result) in new[] { ("podmigrate agent", cli), (string.Join(' ', AgentBinary.HostCommand), host) })
            {
                result.ExitCode.ShouldBe(code, $"{name}: {result.StandardError}");
                result.StandardError.ShouldContain($"error: {message}", Case.Sensitive, name);
            }
        }
    }

    public void Dispose()
    {
        _timeout.Dispose();
        _directory.Delete(recursive: true);
    }
}
