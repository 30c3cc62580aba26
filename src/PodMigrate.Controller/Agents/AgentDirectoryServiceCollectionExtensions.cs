using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PodMigrate.Kube.Client;

namespace PodMigrate.Controller.Agents;

public static class AgentDirectoryServiceCollectionExtensions
{
    /// <summary>
    /// Registers the agent directory (<see cref="AgentConnectionOptions"/>, validated at start): through the agent pods,
    /// or the static map when <see cref="AgentConnectionOptions.StaticAgents"/> is set. The pod lookup and the TLS Secret
    /// need an <see cref="IKubernetesApi"/> in the container; a <see cref="TimeProvider"/> is added if missing.
    /// </summary>
    public static IServiceCollection AddAgentDirectory(this IServiceCollection services, Action<AgentConnectionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<AgentConnectionOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }
        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<AgentConnectionOptions>, AgentConnectionOptionsValidator>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IAgentDirectory>(sp => AgentDirectories.Create(
            sp.GetRequiredService<IOptions<AgentConnectionOptions>>(), sp.GetService<IKubernetesApi>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        return services;
    }
}

/// <summary>The directory the options ask for: the static map when one is given, else the agent DaemonSet's pods.</summary>
internal static class AgentDirectories
{
    public static IAgentDirectory Create(IOptions<AgentConnectionOptions> options, IKubernetesApi? api, TimeProvider time, ILoggerFactory loggers)
        => options.Value.StaticAgents.Count > 0
            ? new StaticAgentDirectory(options, api, time, loggers.CreateLogger<StaticAgentDirectory>())
            : new KubernetesAgentDirectory(api ?? throw new ArgumentNullException(nameof(api), "finding agents through their pods needs the Kubernetes API"),
                options, time, loggers.CreateLogger<KubernetesAgentDirectory>());
}
