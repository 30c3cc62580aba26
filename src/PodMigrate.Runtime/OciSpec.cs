using System.Text.Json;

namespace PodMigrate.Runtime;

/// <summary>
/// What the runtime reads of a bundle's config.json: annotations, mount destinations, the root path, and what the process
/// may hold (user, capabilities, no_new_privs, seccomp). Nothing is written back.
/// </summary>
internal sealed record OciSpec(IReadOnlyDictionary<string, string> Annotations, IReadOnlyList<string> MountDestinations, string RootPath,
    OciProcessGrant Grant)
{
    public const string ConfigFile = "config.json";

    public static OciSpec Parse(ReadOnlySpan<byte> json)
    {
        using var doc = JsonDocument.Parse(json.ToArray());
        var root = doc.RootElement;
        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in a.EnumerateObject())
            {
                if (p.Value.ValueKind == JsonValueKind.String)
                {
                    annotations[p.Name] = p.Value.GetString()!;
                }
            }
        }
        var mounts = new List<string>();
        if (root.TryGetProperty("mounts", out var m) && m.ValueKind == JsonValueKind.Array)
        {
            foreach (var mount in m.EnumerateArray())
            {
                if (mount.TryGetProperty("destination", out var d) && d.ValueKind == JsonValueKind.String)
                {
                    mounts.Add(d.GetString()!);
                }
            }
        }
        var rootPath = root.TryGetProperty("root", out var r) && r.TryGetProperty("path", out var rp) && rp.ValueKind == JsonValueKind.String
            ? rp.GetString()! : "rootfs";
        return new OciSpec(annotations, mounts, rootPath, OciProcessGrant.Parse(root));
    }

    public string? Annotation(string key) => Annotations.TryGetValue(key, out var v) ? v : null;

    /// <summary>The root file system's absolute path (config.json's root.path is relative to the bundle unless absolute).</summary>
    public string RootFsOf(string bundle) => Path.GetFullPath(Path.IsPathRooted(RootPath) ? RootPath : Path.Combine(bundle, RootPath));
}
