using System.Text.Json;
using k8s.Models;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.Serialization;

/// <summary>Reads manifests (YAML or JSON; JSON is YAML) into typed objects and checks what a node needs to run them.</summary>
public static class KubeManifests
{
    /// <summary>The one Pod in <paramref name="text"/> (a single-document YAML or JSON manifest).</summary>
    public static V1Pod ReadPod(string text, string source)
    {
        var documents = KubeYaml.ToJsonDocuments(text, source);
        if (documents.Count != 1)
        {
            throw PodMigrateException.InvalidArgument($"{source}: expected one Pod manifest, found {documents.Count} documents");
        }
        CheckKind(documents[0], source, V1Pod.KubeApiVersion, V1Pod.KubeKind);
        var pod = KubeJson.Deserialize(documents[0], PackageJson.TypeInfo<V1Pod>(), source);
        Validate(pod, source);
        return pod;
    }

    public static async Task<V1Pod> ReadPodFileAsync(string path, CancellationToken cancellationToken)
    {
        string text;
        try
        {
            text = await File.ReadAllTextAsync(path, cancellationToken);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PodMigrateException(ErrorKind.NotFound, $"manifest {path} does not exist", e);
        }
        return ReadPod(text, path);
    }

    /// <summary>What kubelet's validation would reject before a node could run the pod.</summary>
    public static void Validate(V1Pod pod, string source)
    {
        ArgumentNullException.ThrowIfNull(pod);
        if (string.IsNullOrEmpty(pod.Metadata?.Name))
        {
            throw PodMigrateException.InvalidArgument($"{source}: metadata.name is required");
        }
        if (pod.Spec?.Containers is not { Count: > 0 })
        {
            throw PodMigrateException.InvalidArgument($"{source}: pod {pod.Metadata.Name} has no spec.containers");
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < pod.Spec.Containers.Count; i++)
        {
            var container = pod.Spec.Containers[i];
            if (string.IsNullOrEmpty(container.Name) || !names.Add(container.Name))
            {
                throw PodMigrateException.InvalidArgument($"{source}: spec.containers[{i}].name is missing or not unique");
            }
            if (string.IsNullOrEmpty(container.Image))
            {
                throw PodMigrateException.InvalidArgument($"{source}: spec.containers[{i}].image is required");
            }
        }
    }

    private static void CheckKind(byte[] json, string source, string apiVersion, string kind)
    {
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw PodMigrateException.InvalidArgument($"{source}: a manifest must be a mapping, not a {document.RootElement.ValueKind}");
        }
        var actualKind = document.RootElement.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
        var actualVersion = document.RootElement.TryGetProperty("apiVersion", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        if (actualKind != kind || actualVersion != apiVersion)
        {
            throw PodMigrateException.InvalidArgument(
                $"{source}: expected apiVersion {apiVersion} kind {kind}, found apiVersion {actualVersion ?? "(none)"} kind {actualKind ?? "(none)"}");
        }
    }
}
