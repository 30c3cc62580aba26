using System.Net;
using Microsoft.Extensions.Options;
using PodMigrate.Core.Tls;

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

    /// <summary>
    /// A directory with tls.crt, tls.key and ca.crt (a mounted <c>kubernetes.io/tls</c> Secret that carries its CA, or
    /// `podmigrate certs generate`'s agents/&lt;node&gt;): with it the gRPC TCP port serves mutual TLS only. The files
    /// below override single entries.
    /// </summary>
    public string TlsDirectory { get; set; } = "";

    /// <summary>This agent's certificate (PEM; intermediates may follow). Default: &lt;TlsDirectory&gt;/tls.crt.</summary>
    public string TlsCertificateFile { get; set; } = "";

    /// <summary>Its private key (PEM). Default: &lt;TlsDirectory&gt;/tls.key.</summary>
    public string TlsKeyFile { get; set; } = "";

    /// <summary>The CAs a client's certificate must chain to (PEM). Default: &lt;TlsDirectory&gt;/ca.crt.</summary>
    public string TlsClientCaFile { get; set; } = "";

    /// <summary>
    /// Serve cleartext gRPC on a TCP address that is not loopback (no TLS configured): anyone who reaches the port can
    /// checkpoint, restore and delete. Only for local setups; loopback addresses are cleartext-capable without it.
    /// </summary>
    public bool InsecureTcp { get; set; }

    /// <summary>Whether any TLS setting is given (then all three files must resolve and the TCP port is TLS-only).</summary>
    public bool TlsConfigured => !string.IsNullOrEmpty(TlsDirectory) || !string.IsNullOrEmpty(TlsCertificateFile) || !string.IsNullOrEmpty(TlsKeyFile) || !string.IsNullOrEmpty(TlsClientCaFile);

    /// <summary>The TLS files in effect; an entry is empty when neither its own setting nor TlsDirectory names it.</summary>
    public (string Certificate, string Key, string ClientCa) TlsFiles => (
        TlsFile(TlsCertificateFile, TlsFileNames.Certificate),
        TlsFile(TlsKeyFile, TlsFileNames.Key),
        TlsFile(TlsClientCaFile, TlsFileNames.CaBundle));

    private string TlsFile(string explicitFile, string nameInDirectory)
        => !string.IsNullOrEmpty(explicitFile) ? explicitFile
            : !string.IsNullOrEmpty(TlsDirectory) ? Path.Combine(TlsDirectory, nameInDirectory)
            : "";

    /// <summary>
    /// The certificate (PEM; intermediates may follow) whose key signs the manifest of every checkpoint this agent
    /// publishes. It must carry the code-signing extended key usage, as `podmigrate certs generate` agent certificates do.
    /// Default: the TLS certificate (&lt;TlsDirectory&gt;/tls.crt or TlsCertificateFile).
    /// </summary>
    public string CheckpointSigningCertificateFile { get; set; } = "";

    /// <summary>Its private key (PEM). Default: the TLS key.</summary>
    public string CheckpointSigningKeyFile { get; set; } = "";

    /// <summary>
    /// The CAs (PEM bundle) that a checkpoint's signer must chain to for this agent to read it (restore, verify,
    /// import). Default: the TLS CA bundle. During a CA rotation it holds the old CA as well as the new one, until no
    /// checkpoint signed under the old CA is needed any more.
    /// </summary>
    public string CheckpointTrustFile { get; set; } = "";

    /// <summary>
    /// Development only: accept checkpoints that carry no signature (a wrong signature is still refused), and publish
    /// unsigned ones when no signing certificate is configured. Anyone who can write to the share can then plant a
    /// checkpoint this node restores. Logged as a warning at start and at every unsigned checkpoint read.
    /// </summary>
    public bool AllowUnsignedCheckpoints { get; set; }

    /// <summary>The checkpoint-signing files in effect (each falls back to its TLS counterpart); an entry is empty when none applies.</summary>
    public (string Certificate, string Key, string Trust) CheckpointSigningFiles
    {
        get
        {
            var (certificate, key, ca) = TlsFiles;
            return (
                string.IsNullOrEmpty(CheckpointSigningCertificateFile) ? certificate : CheckpointSigningCertificateFile,
                string.IsNullOrEmpty(CheckpointSigningKeyFile) ? key : CheckpointSigningKeyFile,
                string.IsNullOrEmpty(CheckpointTrustFile) ? ca : CheckpointTrustFile);
        }
    }

    /// <summary>Default bound of a checkpoint or restore when the request sets none.</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Retention applied after each publish: checkpoints kept per pod (0: unlimited).</summary>
    public int KeepPerPod { get; set; } = 5;

    /// <summary>
    /// Testing only (fault injection, see <see cref="Checkpointing.CommitPointProbe"/>): the agent process kills itself
    /// (SIGKILL) when a checkpoint reaches this point, e.g. PODMIGRATE_AGENT__FAULTEXITAT=AfterPublish. Unset otherwise.
    /// </summary>
    public Checkpointing.CommitPoint? FaultExitAt { get; set; }

    /// <summary>Testing only: awaited when a checkpoint reaches a commit point (in-process agents; not read from configuration).</summary>
    public Func<Checkpointing.CommitPoint, string, CancellationToken, Task>? CommitPointHook { get; set; }

    /// <summary>
    /// Where checkpoints are prepared for the <c>podmigrate</c> runtime handler (empty: PODMIGRATE_PREPARED_DIR, else
    /// /run/podmigrate/prepared). The node's runtime must be given the same directory.
    /// </summary>
    public string PreparedDirectory { get; set; } = "";

    /// <summary>Prepared staging (and restore records) older than this is removed: its controller never came back for it.</summary>
    public TimeSpan PreparedMaxAge { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>The runtime handler that restores prepared checkpoints at create (the RuntimeClass's handler).</summary>
    public string RestoreRuntimeHandler { get; set; } = "podmigrate";

    /// <summary>
    /// Whether this node has <see cref="RestoreRuntimeHandler"/>, for runtimes whose CRI Status does not list their
    /// handlers (containerd 1.7). Ignored when the runtime lists them.
    /// </summary>
    public bool RestoreRuntimeInstalled { get; set; }

    /// <summary>
    /// The node's registry hosts directory (one <c>&lt;host&gt;/hosts.toml</c> per registry, what CRI's
    /// <c>config_path</c> names), given to containerd's Transfer service when the agent pulls a base image, so a
    /// plain-http or mirrored registry is reached the way CRI reaches it. Empty: containerd's defaults.
    /// </summary>
    public string RegistryHostsDirectory { get; set; } = "";

    /// <summary>
    /// The cgroup all pods of this node run under with an enforced memory capacity (the node emulator's --node-cgroup,
    /// e.g. /podmigrate/node-a; a kubelet's /kubepods): the node's memory samples come from it. Empty: /proc/meminfo.
    /// </summary>
    public string NodeCgroup { get; set; } = "";
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
        if (!string.IsNullOrEmpty(options.PreparedDirectory) && !Path.IsPathRooted(options.PreparedDirectory))
        {
            failures.Add($"Agent:PreparedDirectory must be an absolute path, not '{options.PreparedDirectory}'");
        }
        if (options.PreparedMaxAge <= TimeSpan.Zero)
        {
            failures.Add("Agent:PreparedMaxAge must be positive");
        }
        ValidateTcpSecurity(options, failures);
        ValidateCheckpointSigning(options, failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Secure by default: an agent signs what it publishes and restores only what a trusted agent signed.</summary>
    private static void ValidateCheckpointSigning(AgentOptions options, List<string> failures)
    {
        var (certificate, key, trust) = options.CheckpointSigningFiles;
        var given = new[] { (certificate, "CheckpointSigningCertificateFile"), (key, "CheckpointSigningKeyFile"), (trust, "CheckpointTrustFile") };
        if (options.AllowUnsignedCheckpoints && given.All(g => string.IsNullOrEmpty(g.Item1)))
        {
            return;
        }
        foreach (var (file, name) in given)
        {
            if (string.IsNullOrEmpty(file))
            {
                failures.Add($"Agent:{name} is needed to sign and verify checkpoints: give Agent:TlsDirectory (--tls-dir: the agent's certificate signs, " +
                    "its CA bundle is trusted) or the Agent:CheckpointSigning*/CheckpointTrustFile settings; --allow-unsigned-checkpoints only for local development");
            }
            else if (!File.Exists(file))
            {
                failures.Add($"Agent:{name}: {file} does not exist");
            }
        }
    }

    private static void ValidateTcpSecurity(AgentOptions options, List<string> failures)
    {
        if (!IPAddress.TryParse(options.ListenAddress, out var address))
        {
            failures.Add($"Agent:ListenAddress must be an IP address, not '{options.ListenAddress}'");
            return;
        }
        if (options.TlsConfigured)
        {
            if (options.InsecureTcp)
            {
                failures.Add("Agent:InsecureTcp contradicts the TLS settings: with TLS the TCP port serves mutual TLS only");
            }
            var (certificate, key, clientCa) = options.TlsFiles;
            foreach (var (file, name) in new[] { (certificate, "TlsCertificateFile"), (key, "TlsKeyFile"), (clientCa, "TlsClientCaFile") })
            {
                if (string.IsNullOrEmpty(file))
                {
                    failures.Add($"Agent:{name} is needed for TLS (or Agent:TlsDirectory holding {TlsFileNames.Certificate}, {TlsFileNames.Key}, {TlsFileNames.CaBundle})");
                }
                else if (!File.Exists(file))
                {
                    failures.Add($"Agent:{name}: {file} does not exist");
                }
            }
            return;
        }
        if (options.GrpcPort != 0 && !IPAddress.IsLoopback(address) && !options.InsecureTcp)
        {
            failures.Add($"refusing to serve the agent API in cleartext on {options.ListenAddress}:{options.GrpcPort}, which is not a loopback address: " +
                "give TLS files (Agent:TlsDirectory, --tls-dir) for mutual TLS, listen on 127.0.0.1, or pass --insecure-tcp (Agent:InsecureTcp) for local use");
        }
    }
}
