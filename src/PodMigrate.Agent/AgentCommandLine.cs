using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PodMigrate.Core.Errors;

namespace PodMigrate.Agent;

/// <summary>
/// The `agent` verb: runs the node agent in the foreground, as `podmigrate agent` (the CLI) and as `podmigrate-agent agent`
/// (PodMigrate.Agent.Host, the NativeAOT binary the DaemonSet's image runs): one set of options for both.
/// </summary>
public static class AgentCommandLine
{
    /// <param name="run">Runs the verb's body and turns a <see cref="PodMigrateException"/> into the process's exit code.</param>
    public static Command Create(Func<Func<Task<int>>, CancellationToken, Task<int>> run)
    {
        var node = new Option<string>("--node") { Description = "This node's name (default: $NODE_NAME)" };
        var containerd = new Option<string>("--containerd-socket") { Description = "containerd's gRPC socket (default /run/containerd/containerd.sock)" };
        var socket = new Option<string>("--socket") { Description = "Unix socket to serve the agent API on (default /run/podmigrate/agent.sock)" };
        var port = new Option<int?>("--port") { Description = "TCP port to serve the agent API on (HTTP/2; 0: none; default 7440)" };
        var metricsPort = new Option<int?>("--metrics-port") { Description = "TCP port of the Prometheus /metrics endpoint (0: none)" };
        var listen = new Option<string>("--listen") { Description = "Address the TCP ports bind to (default 0.0.0.0)" };
        var tlsDir = new Option<string>("--tls-dir") { Description = "Serve the TCP port with mutual TLS only: a directory with tls.crt, tls.key and ca.crt (a mounted kubernetes.io/tls Secret)" };
        var tlsCert = new Option<string>("--tls-cert") { Description = "The agent's certificate (PEM); overrides <tls-dir>/tls.crt" };
        var tlsKey = new Option<string>("--tls-key") { Description = "Its private key (PEM); overrides <tls-dir>/tls.key" };
        var tlsClientCa = new Option<string>("--tls-client-ca") { Description = "CAs that clients' certificates must chain to (PEM); overrides <tls-dir>/ca.crt" };
        var signingCert = new Option<string>("--checkpoint-signing-cert") { Description = "The certificate whose key signs the checkpoints this agent publishes (PEM, code-signing usage); default: the TLS certificate" };
        var signingKey = new Option<string>("--checkpoint-signing-key") { Description = "Its private key (PEM); default: the TLS key" };
        var trust = new Option<string>("--checkpoint-trust") { Description = "CAs (PEM bundle) a checkpoint's signer must chain to for this agent to restore it; default: the TLS CA bundle (during a CA rotation: old and new CA)" };
        var allowUnsigned = new Option<bool>("--allow-unsigned-checkpoints") { Description = "DEVELOPMENT ONLY: accept checkpoints without a signature (anyone who can write to the share can then plant one)" };
        var insecureTcp = new Option<bool>("--insecure-tcp") { Description = "Allow cleartext gRPC on a non-loopback --listen address without TLS (local use only)" };
        var share = new Option<string>("--share") { Description = "The shared checkpoint storage (default /var/lib/podmigrate/share)" };
        var state = new Option<string>("--state-dir") { Description = "Node-local state: the journal of held sources, staging unless --staging-dir (default /var/lib/podmigrate/agent)" };
        var staging = new Option<string>("--staging-dir") { Description = "Where CRIU images are dumped and archives unpacked; a tmpfs makes both run at memory speed (default <state-dir>/staging)" };
        var preparedDir = new Option<string>("--prepared-dir") { Description = "Where checkpoints are prepared for the podmigrate runtime handler; the node's runtime must use the same (default $PODMIGRATE_PREPARED_DIR or /run/podmigrate/prepared)" };
        var nodeCgroup = new Option<string>("--node-cgroup") { Description = "The cgroup all this node's pods run under (e.g. the emulator's /podmigrate/<node>): node memory samples come from it (default: /proc/meminfo)" };
        var registryHosts = new Option<string>("--registry-hosts-dir") { Description = "The node's registry hosts directory (<host>/hosts.toml, as CRI's config_path) used when the agent pulls a base image" };
        var restoreRuntime = new Option<bool>("--restore-runtime") { Description = "This node has the podmigrate runtime handler (for runtimes whose CRI Status does not list handlers, e.g. containerd 1.7)" };

        var command = new Command("agent", "Run the PodMigrate node agent (gRPC API over containerd and CRIU)")
        {
            node, containerd, socket, port, metricsPort, listen, tlsDir, tlsCert, tlsKey, tlsClientCa, signingCert, signingKey, trust, allowUnsigned, insecureTcp, share, state, staging, preparedDir, restoreRuntime, registryHosts, nodeCgroup,
        };
        command.SetAction((parse, cancellationToken) => run(async () =>
        {
            void Configure(AgentOptions options)
            {
                options.NodeName = parse.GetValue(node) ?? options.NodeName;
                options.ContainerdSocket = parse.GetValue(containerd) ?? options.ContainerdSocket;
                options.UnixSocket = parse.GetValue(socket) ?? options.UnixSocket;
                options.GrpcPort = parse.GetValue(port) ?? options.GrpcPort;
                options.MetricsPort = parse.GetValue(metricsPort) ?? options.MetricsPort;
                options.ListenAddress = parse.GetValue(listen) ?? options.ListenAddress;
                options.TlsDirectory = parse.GetValue(tlsDir) ?? options.TlsDirectory;
                options.TlsCertificateFile = parse.GetValue(tlsCert) ?? options.TlsCertificateFile;
                options.TlsKeyFile = parse.GetValue(tlsKey) ?? options.TlsKeyFile;
                options.TlsClientCaFile = parse.GetValue(tlsClientCa) ?? options.TlsClientCaFile;
                options.CheckpointSigningCertificateFile = parse.GetValue(signingCert) ?? options.CheckpointSigningCertificateFile;
                options.CheckpointSigningKeyFile = parse.GetValue(signingKey) ?? options.CheckpointSigningKeyFile;
                options.CheckpointTrustFile = parse.GetValue(trust) ?? options.CheckpointTrustFile;
                options.AllowUnsignedCheckpoints = parse.GetValue(allowUnsigned) || options.AllowUnsignedCheckpoints;
                options.InsecureTcp = parse.GetValue(insecureTcp) || options.InsecureTcp;
                options.ShareRoot = parse.GetValue(share) ?? options.ShareRoot;
                options.StateDirectory = parse.GetValue(state) ?? options.StateDirectory;
                options.StagingDirectory = parse.GetValue(staging) ?? options.StagingDirectory;
                options.PreparedDirectory = parse.GetValue(preparedDir) ?? options.PreparedDirectory;
                options.RegistryHostsDirectory = parse.GetValue(registryHosts) ?? options.RegistryHostsDirectory;
                options.NodeCgroup = parse.GetValue(nodeCgroup) ?? options.NodeCgroup;
                options.RestoreRuntimeInstalled = parse.GetValue(restoreRuntime) || options.RestoreRuntimeInstalled;
            }

            // Options are validated as the host is built (services resolve them) or started: either way a usage error.
            try
            {
                await using var app = AgentHost.Build([], Configure);
                await app.StartAsync(cancellationToken);
                await app.WaitForShutdownAsync(cancellationToken);
            }
            catch (OptionsValidationException e)
            {
                throw PodMigrateException.InvalidArgument($"agent options: {string.Join("; ", e.Failures)}");
            }
            return 0;
        }, cancellationToken));
        return command;
    }
}
