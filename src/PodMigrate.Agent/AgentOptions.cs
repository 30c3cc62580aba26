using Microsoft.Extensions.Options;

namespace PodMigrate.Agent;

/// <summary>
/// Everything the agent is configured with. Bound from configuration (section "Agent", environment variables
/// PODMIGRATE_AGENT__*, command-line --Agent:...) and from NODE_NAME, the DaemonSet's downward-API variable.
/// </summary>
public sealed class AgentOptions
{
    public const string Section = "Agent";

    /// <summary>This node's name (Kubernetes node name). Required.</summary>
    public string NodeName { get; set; } = "";

    /// <summary>containerd's gRPC socket on this node.</summary>
    public string ContainerdSocket { get; set; } = "/run/containerd/containerd.sock";

    /// <summary>The containerd namespace in which CRI keeps pods' containers.</summary>
    public string ContainerdNamespace { get; set; } = "k8s.io";

    /// <summary>The shared checkpoint storage (an NFS/SMB mount on every node).</summary>
    public string ShareRoot { get; set; } = "/var/lib/podmigrate/share";

    /// <summary>Node-local working space: CRIU image directories, restore staging, the journal of frozen sources.</summary>
    public string StateDirectory { get; set; } = "/var/lib/podmigrate/agent";

    /// <summary>
    /// Where CRIU images are dumped and archives unpacked before a restore (empty: &lt;StateDirectory&gt;/staging). A tmpfs
    /// (e.g. /dev/shm/podmigrate) makes both run at memory speed instead of the disk's, for as much RAM as the largest
    /// checkpoint in flight; on a disk it costs a write and a read-back of every image.
    /// </summary>
    public string StagingDirectory { get; set; } = "";

    /// <summary>The staging directory in effect.</summary>
    public string StagingPath => string.IsNullOrEmpty(StagingDirectory) ? Path.Combine(StateDirectory, "staging") : StagingDirectory;

    /// <summary>Unix socket the gRPC API listens on (empty: none).</summary>
    public string UnixSocket { get; set; } = "/run/podmigrate/agent.sock";

    /// <summary>TCP port of the gRPC API (0: none).</summary>
    public int GrpcPort { get; set; } = 7440;

    /// <summary>TCP port of the Prometheus /metrics endpoint (HTTP/1.1; 0: none).</summary>
    public int MetricsPort { get; set; }

    /// <summary>Address the TCP listeners bind to.</summary>
    public string ListenAddress { get; set; } = "0.0.0.0";

    /// <summary>Default bound of a checkpoint or restore when the request sets none.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Retention applied after each publish: checkpoints kept per pod (0: unlimited).</summary>
    public int KeepPerPod { get; set; } = 5;
}

internal sealed class AgentOptionsValidator : IValidateOptions<AgentOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.NodeName))
        {
            failures.Add("Agent:NodeName (or NODE_NAME) is required");
        }
        if (!Path.IsPathRooted(options.ContainerdSocket))
        {
            failures.Add($"Agent:ContainerdSocket must be an absolute path, not '{options.ContainerdSocket}'");
        }
        if (!Path.IsPathRooted(options.ShareRoot))
        {
            failures.Add($"Agent:ShareRoot must be an absolute path, not '{options.ShareRoot}'");
        }
        if (!Path.IsPathRooted(options.StateDirectory))
        {
            failures.Add($"Agent:StateDirectory must be an absolute path, not '{options.StateDirectory}'");
        }
        if (!string.IsNullOrEmpty(options.StagingDirectory) && !Path.IsPathRooted(options.StagingDirectory))
        {
            failures.Add($"Agent:StagingDirectory must be an absolute path, not '{options.StagingDirectory}'");
        }
        if (string.IsNullOrEmpty(options.UnixSocket) && options.GrpcPort == 0)
        {
            failures.Add("the agent needs a unix socket or a TCP port to serve on");
        }
        if (options.GrpcPort is < 0 or > 65535 || options.MetricsPort is < 0 or > 65535)
        {
            failures.Add("ports must be within 0..65535");
        }
        if (options.GrpcPort != 0 && options.GrpcPort == options.MetricsPort)
        {
            failures.Add("the gRPC and metrics ports must differ (gRPC is HTTP/2 only, metrics HTTP/1.1)");
        }
        if (options.OperationTimeout <= TimeSpan.Zero)
        {
            failures.Add("Agent:OperationTimeout must be positive");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
