using System.Text.Json;
using k8s.Models;
using PodMigrate.Kube.Models;

namespace PodMigrate.Kube.Tests;

internal static class TestObjects
{
    public static V1Pod Pod(string name, Dictionary<string, string>? labels = null, string? nodeName = null) => new()
    {
        Metadata = new V1ObjectMeta { Name = name, Labels = labels },
        Spec = new V1PodSpec
        {
            NodeName = nodeName,
            Containers = [new V1Container { Name = "main", Image = "localhost:5000/podmigrate/counter:1" }],
        },
    };

    public static CustomResource Crd() => new()
    {
        ApiVersion = "apiextensions.k8s.io/v1",
        Kind = "CustomResourceDefinition",
        Metadata = new ObjectMeta { Name = "podmigrations.podmigrate.io" },
        Spec = JsonDocument.Parse("""
            {"group": "podmigrate.io", "scope": "Namespaced",
             "names": {"plural": "podmigrations", "singular": "podmigration", "kind": "PodMigration"},
             "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                           "subresources": {"status": {}},
                           "additionalPrinterColumns": [
                             {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                             {"name": "Source", "type": "string", "jsonPath": ".spec.podName"},
                             {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}
            """).RootElement.Clone(),
    };
}
