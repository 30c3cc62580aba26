namespace PodMigrate.Kube.ApiServer.Strategies;

/// <summary>The strategy of each served resource type: the built-ins' own, and one made from a custom resource's type.</summary>
internal static class ResourceStrategies
{
    private static readonly Dictionary<string, IResourceStrategy> BuiltIn = BuildBuiltIn();

    public static IResourceStrategy For(ResourceType type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.IsCustom)
        {
            return type.HasStatus ? new StatusFromControllerStrategy(type) : new ResourceStrategy(type);
        }
        return BuiltIn.TryGetValue(type.StorageKey, out var strategy) ? strategy : new ResourceStrategy(type);
    }

    private static Dictionary<string, IResourceStrategy> BuildBuiltIn()
    {
        var strategies = BuiltInTypes.All.ToDictionary(t => t.StorageKey, t => (IResourceStrategy)new ResourceStrategy(t), StringComparer.Ordinal);
        foreach (var strategy in new ResourceStrategy[]
        {
            new PodStrategy(),
            new NamespaceStrategy(),
            new SecretStrategy(),
            new CustomResourceDefinitionStrategy(),
            new PendingUntilBoundStrategy(BuiltInTypes.PersistentVolumes),
            new PendingUntilBoundStrategy(BuiltInTypes.PersistentVolumeClaims),
            new StatusFromControllerStrategy(BuiltInTypes.Deployments),
            new StatusFromControllerStrategy(BuiltInTypes.DaemonSets),
            new StatusFromControllerStrategy(BuiltInTypes.PodDisruptionBudgets),
        })
        {
            strategies[strategy.Type.StorageKey] = strategy;
        }
        return strategies;
    }
}
