using Microsoft.Extensions.Options;

namespace PodMigrate.Controller.Agents;

/// <summary>
/// How the controller finds node agents and talks to them. Bound from configuration section "Agents"
/// (PODMIGRATE_AGENTS__*). By default: the agent DaemonSet's pods in podmigrate-system, mutual TLS with the client
/// certificate and CA of the Secret podmigrate-system/podmigrate-controller-tls.
/// </summary>
public sealed class AgentConnectionOptions
{
    public const string Section = "Agents";
    public const string DefaultNamespace = "podmigrate-system";
    public const string DefaultLabelSelector = "app.kubernetes.io/name=podmigrate-agent";
    public const string DefaultPortName = "grpc";
    public const string DefaultTlsSecretName = "podmigrate-controller-tls";

    /// <summary>Namespace of the agent pods (and, by default, of the TLS Secret).</summary>
    public string Namespace { get; set; } = DefaultNamespace;

    /// <summary>Label selector of the agent pods.</summary>
    public string LabelSelector { get; set; } = DefaultLabelSelector;

    /// <summary>Name of the agent container's gRPC port.</summary>
    public string PortName { get; set; } = DefaultPortName;

    /// <summary>
    /// Node name → agent address ("host:port", "unix:/path/agent.sock" or a full URL) instead of looking up pods: for
    /// local use and tests. Empty: the agents are found through their pods.
    /// </summary>
    public Dictionary<string, string> StaticAgents { get; set; } = [];

    /// <summary>Cleartext gRPC to the agents, without certificates: only for a local cluster whose agents listen on loopback.</summary>
    public bool Insecure { get; set; }

    /// <summary>
    /// The Secret with the controller's client certificate (tls.crt, tls.key) and the CA the agents' certificates chain to
    /// (ca.crt): type kubernetes.io/tls. Read through the API server unless <see cref="TlsDirectory"/> is set.
    /// </summary>
    public string TlsSecretName { get; set; } = DefaultTlsSecretName;

    /// <summary>The Secret's namespace (empty: <see cref="Namespace"/>).</summary>
    public string TlsSecretNamespace { get; set; } = "";

    /// <summary>A directory with tls.crt, tls.key and ca.crt (e.g. the Secret mounted into the controller's pod), instead of reading the Secret.</summary>
    public string TlsDirectory { get; set; } = "";

    /// <summary>
    /// The name every agent's certificate must carry (when all agents share one certificate). Empty: the agent's node name,
    /// so an agent can only answer for the node its certificate names.
    /// </summary>
    public string TlsServerName { get; set; } = "";

    /// <summary>How often the TLS material is read again, so a rotated Secret is picked up (0: never).</summary>
    public TimeSpan CredentialsRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Bound of a connection attempt to an agent.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public string EffectiveTlsSecretNamespace => string.IsNullOrEmpty(TlsSecretNamespace) ? Namespace : TlsSecretNamespace;
}

internal sealed class AgentConnectionOptionsValidator : IValidateOptions<AgentConnectionOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentConnectionOptions options)
    {
        var failures = new List<string>();
        if (options.StaticAgents.Count == 0)
        {
            if (string.IsNullOrWhiteSpace(options.Namespace))
            {
                failures.Add("Agents:Namespace is required to find the agent pods");
            }
            if (string.IsNullOrWhiteSpace(options.LabelSelector))
            {
                failures.Add("Agents:LabelSelector is required to find the agent pods");
            }
            if (string.IsNullOrWhiteSpace(options.PortName))
            {
                failures.Add("Agents:PortName is required (the agent container's gRPC port name)");
            }
        }
        foreach (var (node, address) in options.StaticAgents)
        {
            if (string.IsNullOrWhiteSpace(node) || string.IsNullOrWhiteSpace(address))
            {
                failures.Add($"Agents:StaticAgents: '{node}' = '{address}' needs a node name and an address");
            }
        }
        if (options.Insecure && !string.IsNullOrEmpty(options.TlsDirectory))
        {
            failures.Add("Agents:Insecure contradicts Agents:TlsDirectory: choose cleartext (local cluster) or mutual TLS");
        }
        if (!options.Insecure && string.IsNullOrEmpty(options.TlsDirectory) && string.IsNullOrEmpty(options.TlsSecretName))
        {
            failures.Add("mutual TLS to the agents needs Agents:TlsSecretName or Agents:TlsDirectory (or Agents:Insecure for a local cluster)");
        }
        if (options.CredentialsRefreshInterval < TimeSpan.Zero)
        {
            failures.Add("Agents:CredentialsRefreshInterval must not be negative");
        }
        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add("Agents:ConnectTimeout must be positive");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
