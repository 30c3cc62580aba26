using PodMigrate.TestKit.Cluster;

namespace PodMigrate.Integration.Tests.Cluster;

/// <summary>Test classes on the shared local cluster (xunit finds collection definitions only in the test assembly).</summary>
[CollectionDefinition(Name)]
public sealed class SharedLocalCluster : ICollectionFixture<LocalCluster>
{
    public const string Name = "LocalCluster";
}
