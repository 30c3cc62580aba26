using System.Text.Json;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Node.Containerd;

namespace PodMigrate.Agent.Restoring;

/// <summary>How a checkpointed container's spec is made to fit this node.</summary>
/// <param name="CgroupsPath">The new container's cgroup (the source's belongs to the source's pod).</param>
/// <param name="NetworkNamespacePath">The namespace the restored process joins (CRIU was told the source's was external).</param>
/// <param name="BindSources">New sources of bind mounts, by destination (the sandbox files of the source node).</param>
internal sealed record SpecAdaptation(string CgroupsPath, string? NetworkNamespacePath, IReadOnlyDictionary<string, string> BindSources);

/// <summary>
/// Rewrites spec.dump (the source container's OCI runtime spec) for a bare container on this node: a new cgroup,
/// namespaces created anew instead of joined by the source's paths (the network namespace excepted: it is the one
/// given), bind mounts of the source sandbox's files replaced by local ones, hooks and the source sandbox's id
/// dropped. Everything else (process, capabilities, masked paths, devices, ...) is what CRIU checkpointed with.
/// </summary>
internal static class SpecAdapter
{
    private const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";

    /// <summary>Destinations a pod's containers bind from their sandbox (or kubelet), which a bare restore replaces.</summary>
    public static IReadOnlyList<string> SandboxFiles { get; } = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm", "/dev/termination-log"];

    /// <summary>Bind-mount destinations of the spec that a restore must provide a source for.</summary>
    public static IReadOnlyList<string> SandboxBindDestinations(ReadOnlySpan<byte> specJson, string subject)
        => [.. Mounts(Parse(specJson, subject)).Where(IsBind).Select(m => (string?)m["destination"] ?? "").Where(d => SandboxFiles.Contains(d))];

    public static bool HasNetworkNamespace(ReadOnlySpan<byte> specJson, string subject)
        => Parse(specJson, subject)["linux"]?["namespaces"] is JsonArray namespaces
           && namespaces.Any(n => (string?)n?["type"] == "network");

    public static string? Hostname(ReadOnlySpan<byte> specJson, string subject) => (string?)Parse(specJson, subject)["hostname"];

    public static OciSpec Adapt(ReadOnlySpan<byte> specJson, SpecAdaptation adaptation, string subject)
    {
        ArgumentNullException.ThrowIfNull(adaptation);
        var spec = Parse(specJson, subject);
        var linux = spec["linux"] as JsonObject ?? throw new PodMigrateException(ErrorKind.DataLoss, $"{subject} has no linux section");
        linux["cgroupsPath"] = adaptation.CgroupsPath;
        if (linux["namespaces"] is JsonArray namespaces)
        {
            foreach (var ns in namespaces.OfType<JsonObject>())
            {
                ns.Remove("path");
                if ((string?)ns["type"] == "network" && adaptation.NetworkNamespacePath is { } netns)
                {
                    ns["path"] = netns;
                }
            }
        }
        foreach (var mount in Mounts(spec).Where(IsBind))
        {
            var destination = (string?)mount["destination"] ?? "";
            if (adaptation.BindSources.TryGetValue(destination, out var source))
            {
                mount["source"] = source;
            }
            else if ((string?)mount["source"] is { } existing && !Path.Exists(existing))
            {
                throw PodMigrateException.FailedPrecondition(
                    $"{subject}: bind mount {destination} comes from {existing}, which does not exist on this node");
            }
        }
        (spec["annotations"] as JsonObject)?.Remove(SandboxIdAnnotation);
        spec.Remove("hooks");
        return OciSpecJson.Deserialize(JsonSerializer.SerializeToUtf8Bytes(spec, SpecJsonContext.Default.JsonObject), subject);
    }

    private static JsonObject Parse(ReadOnlySpan<byte> specJson, string subject)
    {
        try
        {
            return JsonNode.Parse(specJson) as JsonObject ?? throw new PodMigrateException(ErrorKind.DataLoss, $"{subject} is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"{subject} is not valid JSON: {e.Message}", e);
        }
    }

    private static IEnumerable<JsonObject> Mounts(JsonObject spec) => (spec["mounts"] as JsonArray)?.OfType<JsonObject>() ?? [];

    private static bool IsBind(JsonObject mount)
        => (string?)mount["type"] == "bind"
           || (mount["options"] as JsonArray)?.Any(o => (string?)o is "bind" or "rbind") == true;
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonObject))]
internal sealed partial class SpecJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
