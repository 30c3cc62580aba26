using System.Text.Json;
using System.Text.Json.Serialization;
using ObjectMeta = PodMigrate.Kube.Models.ObjectMeta;

namespace PodMigrate.Kube.Tests.Manifests;

// Strict models of the kinds in deploy/: the fields those manifests use (and their close neighbours), with Kubernetes'
// JSON names, and no extension data, so that StrictManifests reports any other field as unknown. Kubernetes has more
// fields than these: a manifest that needs one adds it here (the error names the field). The product's models stay
// lenient (they keep unknown fields for round trips) and live in src/PodMigrate.Kube/Models; only metadata is shared.
// Kinds the product reads are checked through the product's models too (see DeployManifestTests).

public sealed class NamespaceResource
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public NamespaceSpec? Spec { get; init; }
}

public sealed class NamespaceSpec
{
    public List<string>? Finalizers { get; init; }
}

public sealed class ServiceAccount
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public bool? AutomountServiceAccountToken { get; init; }
    public List<LocalObjectReference>? ImagePullSecrets { get; init; }
    public List<LocalObjectReference>? Secrets { get; init; }
}

public sealed class LocalObjectReference
{
    public required string Name { get; init; }
}

public sealed class ClusterRole
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public List<PolicyRule>? Rules { get; init; }
}

public sealed class Role
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public List<PolicyRule>? Rules { get; init; }
}

public sealed class PolicyRule
{
    public List<string>? ApiGroups { get; init; }
    public List<string>? Resources { get; init; }
    public List<string>? ResourceNames { get; init; }
    public required List<string> Verbs { get; init; }
    [JsonPropertyName("nonResourceURLs")]
    public List<string>? NonResourceUrls { get; init; }
}

public sealed class ClusterRoleBinding
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required RoleRef RoleRef { get; init; }
    public List<Subject>? Subjects { get; init; }
}

public sealed class RoleBinding
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required RoleRef RoleRef { get; init; }
    public List<Subject>? Subjects { get; init; }
}

public sealed class RoleRef
{
    public required string ApiGroup { get; init; }
    public required string Kind { get; init; }
    public required string Name { get; init; }
}

public sealed class Subject
{
    public required string Kind { get; init; }
    public required string Name { get; init; }
    public string? Namespace { get; init; }
    public string? ApiGroup { get; init; }
}

/// <summary>node.k8s.io/v1 RuntimeClass (cluster-scoped; no spec: handler, overhead and scheduling are top-level).</summary>
public sealed class RuntimeClass
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required string Handler { get; init; }
    public JsonElement? Overhead { get; init; }
    public JsonElement? Scheduling { get; init; }
}

public sealed class PersistentVolume
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required PersistentVolumeSpec Spec { get; init; }
}

public sealed class PersistentVolumeSpec
{
    public Dictionary<string, Quantity>? Capacity { get; init; }
    public List<string>? AccessModes { get; init; }
    public string? PersistentVolumeReclaimPolicy { get; init; }
    public string? StorageClassName { get; init; }
    public string? VolumeMode { get; init; }
    public List<string>? MountOptions { get; init; }
    public VolumeClaimReference? ClaimRef { get; init; }
    public NfsVolumeSource? Nfs { get; init; }
    public CsiPersistentVolumeSource? Csi { get; init; }
}

public sealed class VolumeClaimReference
{
    public string? ApiVersion { get; init; }
    public string? Kind { get; init; }
    public string? Namespace { get; init; }
    public string? Name { get; init; }
    public string? Uid { get; init; }
}

public sealed class NfsVolumeSource
{
    public required string Server { get; init; }
    public required string Path { get; init; }
    public bool? ReadOnly { get; init; }
}

public sealed class CsiPersistentVolumeSource
{
    public required string Driver { get; init; }
    public required string VolumeHandle { get; init; }
    public bool? ReadOnly { get; init; }
    public string? FsType { get; init; }
    public Dictionary<string, string>? VolumeAttributes { get; init; }
    public SecretReference? NodeStageSecretRef { get; init; }
    public SecretReference? NodePublishSecretRef { get; init; }
}

public sealed class SecretReference
{
    public string? Name { get; init; }
    public string? Namespace { get; init; }
}

public sealed class PersistentVolumeClaim
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required PersistentVolumeClaimSpec Spec { get; init; }
}

public sealed class PersistentVolumeClaimSpec
{
    public List<string>? AccessModes { get; init; }
    public string? StorageClassName { get; init; }
    public string? VolumeName { get; init; }
    public string? VolumeMode { get; init; }
    public ResourceRequirements? Resources { get; init; }
    public LabelSelector? Selector { get; init; }
}

public sealed class Deployment
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required DeploymentSpec Spec { get; init; }
}

public sealed class DeploymentSpec
{
    public int? Replicas { get; init; }
    public required LabelSelector Selector { get; init; }
    public required PodTemplateSpec Template { get; init; }
    public DeploymentStrategy? Strategy { get; init; }
    public int? RevisionHistoryLimit { get; init; }
    public int? MinReadySeconds { get; init; }
    public int? ProgressDeadlineSeconds { get; init; }
}

public sealed class DeploymentStrategy
{
    public string? Type { get; init; }
    public RollingUpdate? RollingUpdate { get; init; }
}

public sealed class RollingUpdate
{
    public IntOrString? MaxUnavailable { get; init; }
    public IntOrString? MaxSurge { get; init; }
}

public sealed class DaemonSet
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required DaemonSetSpec Spec { get; init; }
}

public sealed class DaemonSetSpec
{
    public required LabelSelector Selector { get; init; }
    public required PodTemplateSpec Template { get; init; }
    public DaemonSetUpdateStrategy? UpdateStrategy { get; init; }
    public int? MinReadySeconds { get; init; }
    public int? RevisionHistoryLimit { get; init; }
}

public sealed class DaemonSetUpdateStrategy
{
    public string? Type { get; init; }
    public RollingUpdate? RollingUpdate { get; init; }
}

public sealed class LabelSelector
{
    public Dictionary<string, string>? MatchLabels { get; init; }
    public List<LabelSelectorRequirement>? MatchExpressions { get; init; }
}

public sealed class LabelSelectorRequirement
{
    public required string Key { get; init; }
    public required string Operator { get; init; }
    public List<string>? Values { get; init; }
}

public sealed class PodTemplateSpec
{
    public ObjectMeta? Metadata { get; init; }
    public required PodSpec Spec { get; init; }
}

/// <summary>A Pod (deploy/examples): the product reads these through its own lenient model too.</summary>
public sealed class Pod
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required PodSpec Spec { get; init; }
}

public sealed class PodSpec
{
    public required List<Container> Containers { get; init; }
    public List<Container>? InitContainers { get; init; }
    public List<Volume>? Volumes { get; init; }
    public string? ServiceAccountName { get; init; }
    public bool? AutomountServiceAccountToken { get; init; }
    [JsonPropertyName("hostPID")]
    public bool? HostPid { get; init; }
    [JsonPropertyName("hostIPC")]
    public bool? HostIpc { get; init; }
    public bool? HostNetwork { get; init; }
    public string? DnsPolicy { get; init; }
    public string? RestartPolicy { get; init; }
    public long? TerminationGracePeriodSeconds { get; init; }
    public string? PriorityClassName { get; init; }
    public Dictionary<string, string>? NodeSelector { get; init; }
    public string? NodeName { get; init; }
    public List<PodSchedulingGate>? SchedulingGates { get; init; }
    public List<Toleration>? Tolerations { get; init; }
    public Affinity? Affinity { get; init; }
    public PodSecurityContext? SecurityContext { get; init; }
    public List<LocalObjectReference>? ImagePullSecrets { get; init; }
}

public sealed class PodSchedulingGate
{
    public required string Name { get; init; }
}

public sealed class Container
{
    public required string Name { get; init; }
    public required string Image { get; init; }
    public string? ImagePullPolicy { get; init; }
    public List<string>? Command { get; init; }
    public List<string>? Args { get; init; }
    public string? WorkingDir { get; init; }
    public List<EnvVar>? Env { get; init; }
    public List<ContainerPort>? Ports { get; init; }
    public Probe? ReadinessProbe { get; init; }
    public Probe? LivenessProbe { get; init; }
    public Probe? StartupProbe { get; init; }
    public ResourceRequirements? Resources { get; init; }
    public SecurityContext? SecurityContext { get; init; }
    public List<VolumeMount>? VolumeMounts { get; init; }
}

public sealed class EnvVar
{
    public required string Name { get; init; }
    public string? Value { get; init; }
    public EnvVarSource? ValueFrom { get; init; }
}

public sealed class EnvVarSource
{
    public ObjectFieldSelector? FieldRef { get; init; }
    public KeySelector? SecretKeyRef { get; init; }
    public KeySelector? ConfigMapKeyRef { get; init; }
}

public sealed class ObjectFieldSelector
{
    public string? ApiVersion { get; init; }
    public required string FieldPath { get; init; }
}

public sealed class KeySelector
{
    public required string Name { get; init; }
    public required string Key { get; init; }
    public bool? Optional { get; init; }
}

public sealed class ContainerPort
{
    public string? Name { get; init; }
    [JsonPropertyName("containerPort")]
    public required int Number { get; init; }
    public int? HostPort { get; init; }
    public string? Protocol { get; init; }
    [JsonPropertyName("hostIP")]
    public string? HostIp { get; init; }
}

public sealed class Probe
{
    public HttpGetAction? HttpGet { get; init; }
    public TcpSocketAction? TcpSocket { get; init; }
    public ExecAction? Exec { get; init; }
    public int? InitialDelaySeconds { get; init; }
    public int? PeriodSeconds { get; init; }
    public int? TimeoutSeconds { get; init; }
    public int? SuccessThreshold { get; init; }
    public int? FailureThreshold { get; init; }
}

public sealed class HttpGetAction
{
    public string? Path { get; init; }
    public required IntOrString Port { get; init; }
    public string? Scheme { get; init; }
    public string? Host { get; init; }
}

public sealed class TcpSocketAction
{
    public required IntOrString Port { get; init; }
    public string? Host { get; init; }
}

public sealed class ExecAction
{
    public List<string>? Command { get; init; }
}

public sealed class ResourceRequirements
{
    public Dictionary<string, Quantity>? Requests { get; init; }
    public Dictionary<string, Quantity>? Limits { get; init; }
}

public sealed class SecurityContext
{
    public bool? Privileged { get; init; }
    public bool? AllowPrivilegeEscalation { get; init; }
    public bool? ReadOnlyRootFilesystem { get; init; }
    public bool? RunAsNonRoot { get; init; }
    public long? RunAsUser { get; init; }
    public long? RunAsGroup { get; init; }
    public Capabilities? Capabilities { get; init; }
    public SeccompProfile? SeccompProfile { get; init; }
}

public sealed class PodSecurityContext
{
    public bool? RunAsNonRoot { get; init; }
    public long? RunAsUser { get; init; }
    public long? RunAsGroup { get; init; }
    public long? FsGroup { get; init; }
    public SeccompProfile? SeccompProfile { get; init; }
}

public sealed class Capabilities
{
    public List<string>? Add { get; init; }
    public List<string>? Drop { get; init; }
}

public sealed class SeccompProfile
{
    public required string Type { get; init; }
    public string? LocalhostProfile { get; init; }
}

public sealed class VolumeMount
{
    public required string Name { get; init; }
    public required string MountPath { get; init; }
    public bool? ReadOnly { get; init; }
    public string? MountPropagation { get; init; }
    public string? SubPath { get; init; }
}

public sealed class Volume
{
    public required string Name { get; init; }
    public HostPathVolumeSource? HostPath { get; init; }
    public PersistentVolumeClaimVolumeSource? PersistentVolumeClaim { get; init; }
    public SecretVolumeSource? Secret { get; init; }
    public EmptyDirVolumeSource? EmptyDir { get; init; }
    public ConfigMapVolumeSource? ConfigMap { get; init; }
}

public sealed class HostPathVolumeSource
{
    public required string Path { get; init; }
    public string? Type { get; init; }
}

public sealed class PersistentVolumeClaimVolumeSource
{
    public required string ClaimName { get; init; }
    public bool? ReadOnly { get; init; }
}

public sealed class SecretVolumeSource
{
    public required string SecretName { get; init; }
    public int? DefaultMode { get; init; }
    public bool? Optional { get; init; }
    public List<KeyToPath>? Items { get; init; }
}

public sealed class ConfigMapVolumeSource
{
    public required string Name { get; init; }
    public int? DefaultMode { get; init; }
    public bool? Optional { get; init; }
    public List<KeyToPath>? Items { get; init; }
}

public sealed class KeyToPath
{
    public required string Key { get; init; }
    public required string Path { get; init; }
    public int? Mode { get; init; }
}

public sealed class EmptyDirVolumeSource
{
    public string? Medium { get; init; }
    public Quantity? SizeLimit { get; init; }
}

public sealed class Toleration
{
    public string? Key { get; init; }
    public string? Operator { get; init; }
    public string? Value { get; init; }
    public string? Effect { get; init; }
    public long? TolerationSeconds { get; init; }
}

public sealed class Affinity
{
    public PodAffinity? PodAffinity { get; init; }
    public PodAffinity? PodAntiAffinity { get; init; }
}

public sealed class PodAffinity
{
    public List<PodAffinityTerm>? RequiredDuringSchedulingIgnoredDuringExecution { get; init; }
    public List<WeightedPodAffinityTerm>? PreferredDuringSchedulingIgnoredDuringExecution { get; init; }
}

public sealed class WeightedPodAffinityTerm
{
    public required int Weight { get; init; }
    public required PodAffinityTerm PodAffinityTerm { get; init; }
}

public sealed class PodAffinityTerm
{
    public required string TopologyKey { get; init; }
    public LabelSelector? LabelSelector { get; init; }
    public List<string>? Namespaces { get; init; }
}

public sealed class CustomResourceDefinition
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required CustomResourceDefinitionSpec Spec { get; init; }
}

public sealed class CustomResourceDefinitionSpec
{
    public required string Group { get; init; }
    public required string Scope { get; init; }
    public required CustomResourceDefinitionNames Names { get; init; }
    public required List<CustomResourceDefinitionVersion> Versions { get; init; }
}

public sealed class CustomResourceDefinitionNames
{
    public required string Plural { get; init; }
    public string? Singular { get; init; }
    public required string Kind { get; init; }
    public string? ListKind { get; init; }
    public List<string>? ShortNames { get; init; }
    public List<string>? Categories { get; init; }
}

public sealed class CustomResourceDefinitionVersion
{
    public required string Name { get; init; }
    public required bool Served { get; init; }
    public required bool Storage { get; init; }
    public bool? Deprecated { get; init; }
    public CustomResourceSubresources? Subresources { get; init; }
    public List<CustomResourceColumnDefinition>? AdditionalPrinterColumns { get; init; }
    public CustomResourceValidation? Schema { get; init; }
}

public sealed class CustomResourceSubresources
{
    /// <summary>An empty object: its presence enables the status subresource.</summary>
    public EmptyObject? Status { get; init; }
}

public sealed class EmptyObject;

public sealed class CustomResourceColumnDefinition
{
    public required string Name { get; init; }
    public required string Type { get; init; }
    public required string JsonPath { get; init; }
    public string? Description { get; init; }
    public string? Format { get; init; }
    public int? Priority { get; init; }
}

public sealed class CustomResourceValidation
{
    [JsonPropertyName("openAPIV3Schema")]
    public required JsonSchemaProps OpenApiV3Schema { get; init; }
}

/// <summary>apiextensions/v1 JSONSchemaProps (the structural subset; additionalProperties only in its schema form).</summary>
public sealed class JsonSchemaProps
{
    public string? Type { get; init; }
    public string? Description { get; init; }
    public string? Format { get; init; }
    public string? Pattern { get; init; }
    public List<string>? Required { get; init; }
    public Dictionary<string, JsonSchemaProps>? Properties { get; init; }
    public JsonSchemaProps? Items { get; init; }
    public JsonSchemaProps? AdditionalProperties { get; init; }
    public List<JsonElement>? Enum { get; init; }
    public JsonElement? Default { get; init; }
    public JsonElement? Example { get; init; }
    public bool? Nullable { get; init; }
    public long? MaxLength { get; init; }
    public long? MinLength { get; init; }
    public long? MaxItems { get; init; }
    public long? MinItems { get; init; }
    public double? Maximum { get; init; }
    public double? Minimum { get; init; }
    public List<JsonSchemaProps>? AllOf { get; init; }
    public List<JsonSchemaProps>? AnyOf { get; init; }
    public List<JsonSchemaProps>? OneOf { get; init; }
    [JsonPropertyName("x-kubernetes-preserve-unknown-fields")]
    public bool? PreserveUnknownFields { get; init; }
    [JsonPropertyName("x-kubernetes-int-or-string")]
    public bool? IntOrString { get; init; }
    [JsonPropertyName("x-kubernetes-embedded-resource")]
    public bool? EmbeddedResource { get; init; }
    [JsonPropertyName("x-kubernetes-list-type")]
    public string? ListType { get; init; }
    [JsonPropertyName("x-kubernetes-list-map-keys")]
    public List<string>? ListMapKeys { get; init; }
}

public sealed class Service
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required ServiceSpec Spec { get; init; }
}

public sealed class ServiceSpec
{
    public string? Type { get; init; }
    public Dictionary<string, string>? Selector { get; init; }
    public required List<ServicePort> Ports { get; init; }
}

public sealed class ServicePort
{
    public string? Name { get; init; }
    public required int Port { get; init; }
    public IntOrString? TargetPort { get; init; }
    public string? Protocol { get; init; }
}

public sealed class ValidatingWebhookConfiguration
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required ObjectMeta Metadata { get; init; }
    public required List<ValidatingWebhook> Webhooks { get; init; }
}

public sealed class ValidatingWebhook
{
    public required string Name { get; init; }
    public required List<string> AdmissionReviewVersions { get; init; }
    public required WebhookClientConfig ClientConfig { get; init; }
    public List<RuleWithOperations>? Rules { get; init; }
    public string? FailurePolicy { get; init; }
    public string? MatchPolicy { get; init; }
    public LabelSelector? NamespaceSelector { get; init; }
    public LabelSelector? ObjectSelector { get; init; }
    public required string SideEffects { get; init; }
    public int? TimeoutSeconds { get; init; }
}

public sealed class WebhookClientConfig
{
    public string? Url { get; init; }
    public ServiceReference? Service { get; init; }
    public string? CaBundle { get; init; }
}

public sealed class ServiceReference
{
    public required string Namespace { get; init; }
    public required string Name { get; init; }
    public string? Path { get; init; }
    public int? Port { get; init; }
}

public sealed class RuleWithOperations
{
    public required List<string> Operations { get; init; }
    public required List<string> ApiGroups { get; init; }
    public required List<string> ApiVersions { get; init; }
    public required List<string> Resources { get; init; }
    public string? Scope { get; init; }
}

/// <summary>kustomize.config.k8s.io/v1beta1 Kustomization (what deploy/Kustomization uses).</summary>
public sealed class Kustomization
{
    public required string ApiVersion { get; init; }
    public required string Kind { get; init; }
    public required List<string> Resources { get; init; }
    public string? Namespace { get; init; }
}

/// <summary>A port number or a port name (intstr.IntOrString).</summary>
[JsonConverter(typeof(IntOrStringConverter))]
public sealed record IntOrString(int? Number, string? Name)
{
    public override string ToString() => Number?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Name ?? "";
}

/// <summary>A resource quantity ("100m", "2Gi", 1): kept as written.</summary>
[JsonConverter(typeof(QuantityConverter))]
public sealed record Quantity(string Value)
{
    public override string ToString() => Value;
}

public sealed class IntOrStringConverter : JsonConverter<IntOrString>
{
    public override IntOrString Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number => new IntOrString(reader.GetInt32(), null),
        JsonTokenType.String => new IntOrString(null, reader.GetString()),
        _ => throw new JsonException($"an int or a string, not {reader.TokenType}"),
    };

    public override void Write(Utf8JsonWriter writer, IntOrString value, JsonSerializerOptions options)
    {
        if (value.Number is { } number)
        {
            writer.WriteNumberValue(number);
        }
        else
        {
            writer.WriteStringValue(value.Name);
        }
    }
}

public sealed class QuantityConverter : JsonConverter<Quantity>
{
    public override Quantity Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.String => new Quantity(reader.GetString()!),
        JsonTokenType.Number => new Quantity(System.Text.Encoding.UTF8.GetString(reader.ValueSpan)),
        _ => throw new JsonException($"a quantity (string or number), not {reader.TokenType}"),
    };

    public override void Write(Utf8JsonWriter writer, Quantity value, JsonSerializerOptions options) => writer.WriteStringValue(value.Value);
}
