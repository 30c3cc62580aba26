using System.Globalization;
using k8s.Models;


namespace PodMigrate.TestKit.Cluster;

/// <summary>Pod manifests for tests: unique names and uids so that tests sharing a node never collide.</summary>
public static class TestPods
{
    public const string Namespace = "pm-test";
    public const int HttpPort = 8080;

    /// <summary>The counter workload: increments every <paramref name="intervalMs"/> ms, /tmp/count and GET / on :8080.</summary>
    public static V1Pod Counter(string image, string prefix, int intervalMs = 100)
        => Workload(image, prefix, "counter", new() { ["COUNTER_INTERVAL_MS"] = Invariant(intervalMs) });

    /// <summary>
    /// The memory workload: <paramref name="mib"/> MiB of a pattern from <paramref name="seed"/>, re-verified all the
    /// time; /tmp/memhog.status, GET / (status) and GET /digest on :8080.
    /// </summary>
    public static V1Pod Memhog(string image, string prefix, int mib, int seed = 1)
        => Workload(image, prefix, "memhog", new() { ["MEMHOG_MIB"] = Invariant(mib), ["MEMHOG_SEED"] = Invariant(seed) });

    private static V1Pod Workload(string image, string prefix, string app, Dictionary<string, string> env) => new()
    {
        Metadata = new V1ObjectMeta
        {
            Name = $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}",
            NamespaceProperty = Namespace,
            Uid = Guid.NewGuid().ToString(),
            Labels = new Dictionary<string, string>() { ["app"] = app, ["test"] = prefix },
            Annotations = new Dictionary<string, string>() { ["podmigrate.test/case"] = prefix },
        },
        Spec = new V1PodSpec
        {
            TerminationGracePeriodSeconds = 2,
            Containers =
            [
                new V1Container
                {
                    Name = app,
                    Image = image,
                    Env = [.. env.Select(e => new V1EnvVar { Name = e.Key, Value = e.Value }), new V1EnvVar { Name = "PORT", Value = Invariant(HttpPort) }],
                    Ports = [new V1ContainerPort { Name = "http", ContainerPort = HttpPort, Protocol = "TCP" }],
                },
            ],
        },
    };

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
