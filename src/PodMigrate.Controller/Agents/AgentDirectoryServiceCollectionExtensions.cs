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
        services.TryAddSingleton<IAgentDirectory>(sp =>
        {
            var connection = sp.GetRequiredService<IOptions<AgentConnectionOptions>>();
            var time = sp.GetRequiredService<TimeProvider>();
            return connection.Value.StaticAgents.Count > 0
                ? new StaticAgentDirectory(connection, sp.GetService<IKubernetesApi>(), time, sp.GetRequiredService<ILogger<StaticAgentDirectory>>())
                : new KubernetesAgentDirectory(sp.GetRequiredService<IKubernetesApi>(), connection, time, sp.GetRequiredService<ILogger<KubernetesAgentDirectory>>());
        });
        return services;
    }
}
