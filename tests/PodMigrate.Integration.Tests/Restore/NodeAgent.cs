using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Preparing;
using PodMigrate.Agent.Restoring;
using PodMigrate.Core.Store;
using PodMigrate.Node.Containerd;
using PodMigrate.Core.Tls;
using PodMigrate.TestKit.Cluster;
using PodMigrate.TestKit.Tls;

namespace PodMigrate.Integration.Tests.Restore;

/// <summary>
/// One node's agent composed in-process exactly as the host composes it (<c>AddAgentServices</c>), on a node of the
/// local cluster, with a test-private share and state directory; the operations are driven directly.
/// </summary>
internal sealed class NodeAgent : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    public NodeAgent(ClusterNode node, string share, string stateDirectory)
    {
        // Signed and trusted like every test agent: by the test run's signing CA.
        var signing = TestSigning.Shared.AgentDirectory(node.Name);
        var options = new AgentOptions
        {
            NodeName = node.Name,
            ContainerdSocket = node.ContainerdSocket,
            ShareRoot = share,
            StateDirectory = stateDirectory,
            UnixSocket = "",
            GrpcPort = 0,
            KeepPerPod = 0,
            CheckpointSigningCertificateFile = Path.Combine(signing, TlsFileNames.Certificate),
            CheckpointSigningKeyFile = Path.Combine(signing, TlsFileNames.Key),
            CheckpointTrustFile = Path.Combine(signing, TlsFileNames.CaBundle),
            PreparedDirectory = Path.Combine(stateDirectory, "prepared"),
        };
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(Options.Create(options));
        services.AddAgentServices();
        _services = services.BuildServiceProvider();
        Node = node;
        StateDirectory = stateDirectory;
    }

    public ClusterNode Node { get; }

    public string StateDirectory { get; }

    public CheckpointOperation Checkpoint => _services.GetRequiredService<CheckpointOperation>();

    public RestoreOperation Restore => _services.GetRequiredService<RestoreOperation>();

    public DirectRestore Direct => _services.GetRequiredService<DirectRestore>();

    public CheckpointImages Images => _services.GetRequiredService<CheckpointImages>();

    public CheckpointDeletion Deletion => _services.GetRequiredService<CheckpointDeletion>();

    public ICheckpointStore Store => _services.GetRequiredService<ICheckpointStore>();

    public ContainerdConnection Containerd => _services.GetRequiredService<ContainerdConnection>();

    public PreparedCheckpoints Prepared => _services.GetRequiredService<PreparedCheckpoints>();

    /// <summary>What the agent runs at start-up before it serves.</summary>
    public AgentRecovery Recovery => _services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<AgentRecovery>().Single();

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
