using System.CommandLine;
using System.Text.Json;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Tls;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// How a verb reaches agents over mutual TLS: <c>--tls-dir</c> (or $PODMIGRATE_TLS_DIR) names this client's TLS
/// directory (tls.crt, tls.key, ca.crt; `podmigrate certs generate` writes clients/podmigrate-controller).
/// With it, an https:// agent address is reached with that certificate, and <c>--node N</c> means node N's agent on
/// the local cluster's TCP port (from $PODMIGRATE_RUN_DIR/cluster.json) instead of its unix socket.
/// </summary>
internal sealed class AgentTlsOptions
{
    public const string DirectoryVariable = "PODMIGRATE_TLS_DIR";

    private readonly Option<string?> _directory = new("--tls-dir")
    {
        Description = $"This client's TLS directory (tls.crt, tls.key, ca.crt) for mutual TLS to agents over TCP (default: ${DirectoryVariable})",
    };

    private readonly Option<string?> _serverName = new("--tls-server-name")
    {
        Description = "The name the agent's certificate must carry (default: the node with --node, the host of --agent)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_directory);
        command.Options.Add(_serverName);
    }

    public AgentTls Read(ParseResult parse)
    {
        var explicitDirectory = parse.GetValue(_directory);
        var directory = explicitDirectory ?? (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null);
        return new AgentTls(directory, explicitDirectory is not null, parse.GetValue(_serverName));
    }
}

/// <param name="Directory">The TLS directory, or null for none.</param>
/// <param name="Explicit">Given on the command line (then an address it cannot apply to is a mistake), not only inherited from the environment.</param>
/// <param name="ServerName">Overrides the name checked against the agent's certificate.</param>
internal sealed record AgentTls(string? Directory, bool Explicit, string? ServerName)
{
    public static AgentTls None { get; } = new(null, false, null);

    /// <summary>An https:// agent, or a cleartext one when no TLS directory applies.</summary>
    public AgentClient Connect(string address, string? defaultServerName)
    {
        var secure = address.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        if (!secure)
        {
            if (Explicit)
            {
                throw PodMigrateException.InvalidArgument($"--tls-dir is for https:// agents, not {address}");
            }
            return AgentClient.Connect(address);
        }
        if (Directory is null)
        {
            throw PodMigrateException.InvalidArgument($"{address} is mutual TLS: give this client's certificates with --tls-dir DIR or ${AgentTlsOptions.DirectoryVariable}");
        }
        // The CLI lives for one command: the certificates go with the process.
        var certificates = TlsCertificates.LoadDirectory(Directory);
        return AgentClient.Connect(address, new GrpcConnectOptions { Tls = ClientTlsCredentials.Mutual(certificates, ServerName ?? defaultServerName) });
    }

    /// <summary>A local cluster node's agent over TCP + mutual TLS: 127.0.0.1 and its port from cluster.json, its certificate naming the node.</summary>
    public AgentClient ConnectLocalNode(string node, string runDirectory)
    {
        var clusterFile = Path.Combine(runDirectory, "cluster.json");
        if (!File.Exists(clusterFile))
        {
            throw PodMigrateException.Unavailable($"node {node}: no {clusterFile} to find its agent's TCP port (is the local cluster up? scripts/cluster.sh up); or name the agent with --agent https://HOST:PORT");
        }
        using var cluster = JsonDocument.Parse(File.ReadAllText(clusterFile));
        var port = cluster.RootElement.GetProperty("nodes").EnumerateArray()
            .Where(n => n.GetProperty("name").GetString() == node)
            .Select(n => n.TryGetProperty("agentPort", out var p) ? p.GetInt32() : 0)
            .FirstOrDefault();
        if (port == 0)
        {
            throw PodMigrateException.NotFound($"node {node}: not in {clusterFile}, or without an agent port");
        }
        return Connect($"https://127.0.0.1:{port}", node);
    }
}
