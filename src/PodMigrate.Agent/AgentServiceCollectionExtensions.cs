using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Agent.Checkpointing;
using PodMigrate.Agent.Containers;
using PodMigrate.Agent.NodeInfo;
using PodMigrate.Agent.Operations;
using PodMigrate.Agent.Restoring;
using PodMigrate.Agent.Services;
using PodMigrate.Agent.Telemetry;
using PodMigrate.Core.Metrics;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tls;
using PodMigrate.Node.Containerd;
using PodMigrate.Node.Cri;
using PodMigrate.Node.Criu;

namespace PodMigrate.Agent;

internal static class AgentServiceCollectionExtensions
{
    public static IServiceCollection AddAgentServices(this IServiceCollection services)
    {
        services.AddMetrics();
        services.AddSingleton<AgentMetrics>();
        // With the runtime's own meter: GC heap and fragmentation, committed memory, JIT, thread pool (dotnet_*).
        services.AddSingleton(_ => new PrometheusExporter(AgentMetrics.MeterName, "System.Runtime"));

        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<AgentOptions>>().Value;
            return ContainerdConnection.Open(options.ContainerdSocket, options.ContainerdNamespace, new ContainerdConnectionOptions { TimeProvider = sp.GetRequiredService<TimeProvider>() });
        });
        // containerd serves CRI on the same socket.
        services.AddSingleton(sp => CriConnection.ForUnixSocket(sp.GetRequiredService<IOptions<AgentOptions>>().Value.ContainerdSocket, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new CriuClient(new CriuClientOptions(), sp.GetRequiredService<ILogger<CriuClient>>()));
        services.AddKeyedSingleton(CheckpointSigningKey, (sp, _) =>
        {
            var (certificate, key, trust) = sp.GetRequiredService<IOptions<AgentOptions>>().Value.CheckpointSigningFiles;
            return new TlsCertificateFiles(certificate, key, trust, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<TlsCertificateFiles>>());
        });
        services.AddSingleton(CreateCheckpointSignatures);
        services.AddSingleton<ICheckpointStore>(sp => new FileSystemCheckpointStore(
            new FileSystemCheckpointStoreOptions
            {
                Root = sp.GetRequiredService<IOptions<AgentOptions>>().Value.ShareRoot,
                Signatures = sp.GetRequiredService<CheckpointSignatures>(),
                WriterName = sp.GetRequiredService<IOptions<AgentOptions>>().Value.NodeName,
            },
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<FileSystemCheckpointStore>>()));
        services.AddSingleton(sp => new SourceJournal(sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory));

        services.AddSingleton<CriuCapabilities>();
        services.AddSingleton<OperationGate>();
        services.AddSingleton<ContainerResolver>();
        services.AddSingleton<NodeInfoProvider>();
        services.AddSingleton<CheckpointCapture>();
        services.AddSingleton<CriStatusReader>();
        services.AddSingleton<HeldSources>();
        services.AddSingleton<CommitPointProbe>();
        services.AddSingleton<CheckpointOperation>();
        services.AddSingleton<CheckpointImages>();
        services.AddSingleton<CheckpointDeletion>();
        services.AddSingleton<CriImageRestore>();
        services.AddSingleton<DirectRestore>();
        services.AddSingleton<RestoreOperation>();
        services.AddSingleton<AgentHealth>();
        services.AddSingleton<AgentHealthCheck>();
        services.AddSingleton<ErrorStatusInterceptor>();
        services.AddSingleton<Preparing.PreparedCheckpoints>();
        services.AddSingleton<Memory.MemorySampler>();
        services.AddSingleton<AgentGrpcService>();
        services.AddSingleton(new AgentOperationsOptions());
        services.AddSingleton<AgentOperations>();
        services.AddHostedService<AgentRecovery>();
        services.AddHostedService<CriuWarmup>();
        services.AddSingleton(new Memory.NativeMemoryReleaseOptions());
        services.AddHostedService<Memory.NativeMemoryRelease>();
        services.AddHostedService<Preparing.PreparedStagingJanitor>();
        // Registered last, stopped first: running operations are cancelled and waited for before anything they use stops.
        services.AddHostedService(sp => sp.GetRequiredService<AgentOperations>());
        return services;
    }

    private const string CheckpointSigningKey = "checkpoint-signing";

    /// <summary>
    /// The agent's checkpoint signatures: its certificate (by default its TLS certificate) signs, and its trusted CAs
    /// (by default its TLS CA bundle) decide what it reads; the files are re-read when they change. A certificate that
    /// readers would refuse fails here, at start-up.
    /// </summary>
    private static CheckpointSignatures CreateCheckpointSignatures(IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<AgentOptions>>().Value;
        var time = services.GetRequiredService<TimeProvider>();
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger<CheckpointSignatures>();
        if (options.AllowUnsignedCheckpoints)
        {
            AgentLog.UnsignedCheckpointsAllowed(logger);
        }
        var (certificate, _, trust) = options.CheckpointSigningFiles;
        if (options.AllowUnsignedCheckpoints && string.IsNullOrEmpty(certificate))
        {
            return CheckpointSignatures.UnsignedForDevelopment(time);
        }
        var files = services.GetRequiredKeyedService<TlsCertificateFiles>(CheckpointSigningKey);
        var signatures = CheckpointSignatures.FromFiles(files, options.AllowUnsignedCheckpoints, time);
        var signer = signatures.CheckOwnCertificate();
        AgentLog.SigningCheckpoints(logger, signer.Subject, files.Current.Certificate.NotAfter, trust);
        return signatures;
    }
}
