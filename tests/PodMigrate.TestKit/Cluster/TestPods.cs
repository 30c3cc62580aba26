using System.Globalization;
using PodMigrate.Kube.Models;

namespace PodMigrate.TestKit.Cluster;

/// <summary>Pod manifests for tests: unique names and uids so that tests sharing a node never collide.</summary>
public static class TestPods
{
    public const string Namespace = "pm-test";
    public const int HttpPort = 8080;

    /// <summary>The counter workload: increments every <paramref name="intervalMs"/> ms, /tmp/count and GET / on :8080.</summary>
    public static Pod Counter(string image, string prefix, int intervalMs = 100)
        => Workload(image, prefix, "counter", new() { ["COUNTER_INTERVAL_MS"] = Invariant(intervalMs) });

    /// <summary>
    /// The memory workload: <paramref name="mib"/> MiB of a pattern from <paramref name="seed"/>, re-verified all the
    /// time; /tmp/memhog.status, GET / (status) and GET /digest on :8080.
    /// </summary>
    public static Pod Memhog(string image, string prefix, int mib, int seed = 1)
        => Workload(image, prefix, "memhog", new() { ["MEMHOG_MIB"] = Invariant(mib), ["MEMHOG_SEED"] = Invariant(seed) });

    private static Pod Workload(string image, string prefix, string app, Dictionary<string, string> env) => new()
    {
        Metadata = new ObjectMeta
        {
            Name = $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}",
            Namespace = Namespace,
            Uid = Guid.NewGuid().ToString(),
            Labels = new() { ["app"] = app, ["test"] = prefix },
            Annotations = new() { ["podmigrate.test/case"] = prefix },
        },
        Spec = new PodSpec
        {
            TerminationGracePeriodSeconds = 2,
            Containers =
            [
                new Container
                {
                    Name = app,
                    Image = image,
                    Env = [.. env.Select(e => new EnvVar { Name = e.Key, Value = e.Value }), new EnvVar { Name = "PORT", Value = Invariant(HttpPort) }],
                    Ports = [new ContainerPort { Name = "http", Port = HttpPort, Protocol = "TCP" }],
                },
            ],
        },
    };

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
