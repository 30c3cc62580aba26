using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Grpc;
using PodMigrate.Core.Metrics;
using PodMigrate.Core.Tls;
using PodMigrate.Agent.Services;
using PodMigrate.Agent.Telemetry;

namespace PodMigrate.Agent;

/// <summary>Builds the agent's web host: Kestrel with the gRPC API (unix socket + TCP, HTTP/2) and /metrics (HTTP/1.1).</summary>
public static class AgentHost
{
    /// <summary>Largest request message the agent reads (its requests are small; checkpoints never travel in messages).</summary>
    private const int MaxRequestSize = 16 * 1024 * 1024;

    public static WebApplication Build(string[] args, Action<AgentOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Configuration.AddEnvironmentVariables("PODMIGRATE_");
        // Request logs are the metrics' job; the agent's own events (with ids) tell what happened.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            console.UseUtcTimestamp = true;
        });
        var options = ReadOptions(builder.Configuration, configure);

        builder.Services.AddSingleton<IValidateOptions<AgentOptions>, AgentOptionsValidator>();
        builder.Services.AddOptions<AgentOptions>()
            .Configure(o => Copy(options, o))
            .ValidateOnStart();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddAgentServices();
        builder.Services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = MaxRequestSize;
            grpc.Interceptors.Add<ErrorStatusInterceptor>();
        });
        // grpc.health.v1 (kubelet grpc: probes, grpc-health-probe) answers from the same checks as the agent's Health RPC;
        // reflection lets grpcurl-style tools list and call the API without the .proto.
        builder.Services.AddGrpcHealthChecks().AddCheck<AgentHealthCheck>("node");
        builder.Services.AddGrpcReflection();
        if (options.TlsConfigured)
        {
            var (certificate, key, clientCa) = options.TlsFiles;
            builder.Services.AddSingleton(sp => new TlsCertificateFiles(certificate, key, clientCa, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<TlsCertificateFiles>>()));
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (!string.IsNullOrEmpty(options.UnixSocket))
            {
                PrepareUnixSocketPath(options.UnixSocket);
                // The unix socket stays cleartext: only processes on this node reach it, and connecting needs write
                // permission on the socket file, which is made 0600 (root's) once the server listens. Whoever is root
                // on the node could read the checkpoints and the TLS key anyway; TLS would add nothing there.
                kestrel.ListenUnixSocket(options.UnixSocket, listen => listen.Protocols = HttpProtocols.Http2);
            }
            var address = IPAddress.Parse(options.ListenAddress);
            if (options.GrpcPort > 0)
            {
                // Validation allows cleartext only on loopback or with InsecureTcp; with TLS settings the port is mTLS-only.
                var tls = options.TlsConfigured
                    ? new ServerTlsCredentials(() => kestrel.ApplicationServices.GetRequiredService<TlsCertificateFiles>().Current)
                    : null;
                kestrel.ListenGrpcTcp(new IPEndPoint(address, options.GrpcPort), tls);
            }
            if (options.MetricsPort > 0)
            {
                kestrel.Listen(address, options.MetricsPort, listen => listen.Protocols = HttpProtocols.Http1);
            }
        });

        var app = builder.Build();
        // Options first (all their failures at once), then the TLS files: a bad certificate fails the start, not the
        // first client's handshake.
        _ = app.Services.GetRequiredService<IOptions<AgentOptions>>().Value;
        if (options.TlsConfigured)
        {
            _ = app.Services.GetRequiredService<TlsCertificateFiles>();
        }
        // The checkpoint signing material too: a certificate other agents would refuse fails the start.
        _ = app.Services.GetRequiredService<CheckpointSignatures>();
        app.Lifetime.ApplicationStarted.Register(() => OnStarted(app, options));
        app.MapGrpcService<AgentGrpcService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        if (options.MetricsPort > 0)
        {
            var exporter = app.Services.GetRequiredService<PrometheusExporter>();
            app.MapGet("/metrics", () => Results.Text(exporter.Scrape(), PrometheusExporter.ContentType)).RequireHost($"*:{options.MetricsPort}");
        }
        return app;
    }

    private static void OnStarted(WebApplication app, AgentOptions options)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AgentHost));
        if (!string.IsNullOrEmpty(options.UnixSocket) && File.Exists(options.UnixSocket))
        {
            File.SetUnixFileMode(options.UnixSocket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        if (options.GrpcPort == 0)
        {
            return;
        }
        if (options.TlsConfigured)
        {
            var current = app.Services.GetRequiredService<TlsCertificateFiles>().Current;
            AgentLog.ServingMutualTls(logger, options.ListenAddress, options.GrpcPort, current.Certificate.Subject, current.Certificate.NotAfter, options.TlsFiles.ClientCa);
        }
        else
        {
            AgentLog.ServingCleartext(logger, options.ListenAddress, options.GrpcPort);
        }
    }

    private static AgentOptions ReadOptions(ConfigurationManager configuration, Action<AgentOptions>? configure)
    {
        var options = new AgentOptions();
        configuration.GetSection(AgentOptions.Section).Bind(options);
        if (string.IsNullOrEmpty(options.NodeName))
        {
            // The DaemonSet passes the node name through the downward API as NODE_NAME.
            options.NodeName = configuration["NODE_NAME"] ?? "";
        }
        configure?.Invoke(options);
        return options;
    }

    private static void Copy(AgentOptions from, AgentOptions to)
    {
        foreach (var property in typeof(AgentOptions).GetProperties().Where(p => p.CanWrite))
        {
            property.SetValue(to, property.GetValue(from));
        }
    }

    /// <summary>
    /// A socket file left by an agent that died is removed; one that still answers belongs to a live agent,
    /// and starting a second one on it would steal its clients.
    /// </summary>
    private static void PrepareUnixSocketPath(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!File.Exists(path))
        {
            return;
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path);
            return;
        }
        throw new PodMigrateException(ErrorKind.AlreadyExists, $"another agent is already serving on {path}");
    }
}
