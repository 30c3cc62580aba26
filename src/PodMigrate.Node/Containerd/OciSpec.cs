using System.Text.Json;
using System.Text.Json.Serialization;
using PodMigrate.Core.Errors;

namespace PodMigrate.Node.Containerd;

/// <summary>
/// The parts of the OCI runtime spec (config.json) PodMigrate writes; unknown fields of a spec read back from
/// containerd are kept in <see cref="Extra"/> so a round trip loses nothing.
/// </summary>
public sealed record OciSpec
{
    public string OciVersion { get; init; } = "1.1.0";

    public required OciProcess Process { get; init; }

    public required OciRoot Root { get; init; }

    public string? Hostname { get; init; }

    public IReadOnlyList<OciMount> Mounts { get; init; } = [];

    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    public required OciLinux Linux { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed record OciProcess
{
    public bool Terminal { get; init; }

    public OciUser User { get; init; } = new(0, 0);

    public required IReadOnlyList<string> Args { get; init; }

    public IReadOnlyList<string> Env { get; init; } = [];

    public string Cwd { get; init; } = "/";

    public OciCapabilities? Capabilities { get; init; }

    public IReadOnlyList<OciRlimit> Rlimits { get; init; } = [];

    public bool NoNewPrivileges { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed record OciUser(uint Uid, uint Gid);

public sealed record OciCapabilities(IReadOnlyList<string> Bounding, IReadOnlyList<string> Effective, IReadOnlyList<string> Permitted);

public sealed record OciRlimit(string Type, ulong Hard, ulong Soft);

public sealed record OciRoot(string Path, bool Readonly = false);

public sealed record OciMount(string Destination, string Type, string Source, IReadOnlyList<string>? Options = null);

public sealed record OciLinux
{
    public OciResources? Resources { get; init; }

    public string? CgroupsPath { get; init; }

    public IReadOnlyList<OciNamespace> Namespaces { get; init; } = [];

    public IReadOnlyList<string> MaskedPaths { get; init; } = [];

    public IReadOnlyList<string> ReadonlyPaths { get; init; } = [];

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Extra { get; set; }
}

public sealed record OciResources(IReadOnlyList<OciDeviceRule>? Devices = null);

public sealed record OciDeviceRule(bool Allow, string? Access = null, string? Type = null, long? Major = null, long? Minor = null);

/// <param name="Type">pid, network, mount, ipc, uts, user, cgroup.</param>
/// <param name="Path">Join this namespace instead of creating one.</param>
public sealed record OciNamespace(string Type, string? Path = null);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(OciSpec))]
internal sealed partial class OciSpecJsonContext : JsonSerializerContext;

public static class OciSpecJson
{
    public static byte[] Serialize(OciSpec spec) => JsonSerializer.SerializeToUtf8Bytes(spec, OciSpecJsonContext.Default.OciSpec);

    public static OciSpec Deserialize(ReadOnlySpan<byte> json, string subject)
    {
        try
        {
            return JsonSerializer.Deserialize(json, OciSpecJsonContext.Default.OciSpec)
                ?? throw new PodMigrateException(ErrorKind.DataLoss, $"the OCI spec of {subject} is null");
        }
        catch (JsonException e)
        {
            throw new PodMigrateException(ErrorKind.DataLoss, $"the OCI spec of {subject} is not valid: {e.Message}", e);
        }
    }
}
