using System.CommandLine;
using System.Text.Json;
using Google.Protobuf;
using PodMigrate.Agent.V1;
using PodMigrate.Core.Errors;

namespace PodMigrate.Cli.Commands;

/// <summary>What the verbs share: output format, the local cluster's layout, and pod keys (the error-to-exit-code edge of every verb is <see cref="ExitCodes.RunAsync(Func{Task{int}}, CancellationToken)"/>).</summary>
internal static class CliCommon
{
    public const string DefaultRunDir = "/run/podmigrate";
    public const string DefaultStateDir = "/var/lib/podmigrate";

    public static Option<string> OutputOption() => new Option<string>("--output", "-o")
    {
        Description = "Output format: text or json",
        DefaultValueFactory = _ => "text",
    }.AcceptOnlyFromAmong("text", "json");

    public static bool IsJson(this ParseResult parse, Option<string> output) => parse.GetValue(output) == "json";

    /// <summary>The local cluster's run directory ($PODMIGRATE_RUN_DIR, default /run/podmigrate).</summary>
    /// <summary>
    /// The --state-dir the local cluster gives a node's agent: &lt;state&gt;/nodes/&lt;node&gt;/agent, where state is
    /// $PODMIGRATE_STATE_DIR (default /var/lib/podmigrate), as scripts/cluster.sh lays it out.
    /// </summary>
    public static string NodeAgentStateDirectory(string node)
        => Path.Combine(Environment.GetEnvironmentVariable("PODMIGRATE_STATE_DIR") is { Length: > 0 } dir ? dir : DefaultStateDir, "nodes", node, "agent");

    public static string RunDirectory => Environment.GetEnvironmentVariable("PODMIGRATE_RUN_DIR") is { Length: > 0 } dir ? dir : DefaultRunDir;

    /// <summary>
    /// An agent by address, or the agent of a node of the local cluster: its unix socket &lt;run&gt;/&lt;node&gt;/agent.sock,
    /// or with a TLS directory its TCP port over mutual TLS (<see cref="AgentTlsOptions"/>).
    /// </summary>
    public static AgentClient ConnectAgent(string? node, string? address, AgentTls tls)
    {
        if (!string.IsNullOrEmpty(address))
        {
            return tls.Connect(address, defaultServerName: null);
        }
        if (string.IsNullOrEmpty(node))
        {
            throw PodMigrateException.InvalidArgument("name the node: --node NAME (local cluster) or --agent ADDRESS");
        }
        if (node.Contains('/', StringComparison.Ordinal) || node.StartsWith('.'))
        {
            throw PodMigrateException.InvalidArgument($"'{node}' is not a node name");
        }
        if (tls.Directory is not null)
        {
            return tls.ConnectLocalNode(node, RunDirectory);
        }
        var socket = Path.Combine(RunDirectory, node, "agent.sock");
        if (!File.Exists(socket))
        {
            throw PodMigrateException.Unavailable($"node {node}: no agent socket at {socket} (is the local cluster up with its agents? scripts/cluster.sh up)");
        }
        return AgentClient.Connect(socket);
    }

    /// <summary>"NAMESPACE/NAME" or "NAME" (namespace "default").</summary>
    public static (string Namespace, string Name) ParsePodKey(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var (ns, name) = slash < 0 ? (Node.Cri.KubeletPodConfig.DefaultNamespace, key) : (key[..slash], key[(slash + 1)..]);
        if (ns.Length == 0 || name.Length == 0 || name.Contains('/', StringComparison.Ordinal))
        {
            throw PodMigrateException.InvalidArgument($"pod must be NAMESPACE/NAME or NAME, not \"{key}\"");
        }
        return (ns, name);
    }

    private static readonly JsonFormatter ProtoJson = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    /// <summary>A protobuf message as JSON (proto3 JSON mapping: lowerCamelCase, enums by name).</summary>
    public static void WriteJson(IMessage message) => Console.WriteLine(ProtoJson.Format(message));

    /// <summary>Several named messages as one JSON object.</summary>
    public static void WriteJson(IReadOnlyDictionary<string, IMessage> messages)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            foreach (var (name, message) in messages)
            {
                json.WritePropertyName(name);
                json.WriteRawValue(ProtoJson.Format(message));
            }
            json.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }
}
