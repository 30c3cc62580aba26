using System.Text.Json;
using PodMigrate.Controller;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Serialization;
using ProductPod = k8s.Models.V1Pod;

namespace PodMigrate.Kube.Tests.Manifests;

/// <summary>
/// What the controller relies on to find and reach the agents. Stated once here until the controller (being written)
/// exposes its own constants; then these should refer to them.
/// </summary>
internal static class AgentContract
{
    public const string Namespace = "podmigrate-system";
    public const string NameLabel = "app.kubernetes.io/name";
    public const string Name = "podmigrate-agent";
    public const string ComponentLabel = "app.kubernetes.io/component";
    public const string Component = "agent";
    public const string GrpcPortName = "grpc";
    public const int GrpcPort = 7440;
    public const int MetricsPort = 8440;
    public const string TlsSecret = "podmigrate-agent-tls";
    public const string ControllerTlsSecret = "podmigrate-controller-tls";
}

/// <summary>Every manifest under deploy/ read strictly, and the properties of the installed system that matter.</summary>
[Trait("Category", "Unit")]
public sealed class DeployManifestTests
{
    private static readonly string[] ManifestExtensions = [".yaml", ".yml", ".json"];

    /// <summary>What `kubectl apply -f deploy/` reads: the *.yaml/*.yml/*.json files directly in deploy/, in name order.</summary>
    private static readonly string[] SystemFiles = [.. Directory.GetFiles(DeployDirectory.Path)
        .Where(f => ManifestExtensions.Contains(Path.GetExtension(f), StringComparer.Ordinal))
        .Order(StringComparer.Ordinal)];

    private static readonly Dictionary<(string, string), ResourceType> NoCustomResources = [];

    private static readonly Lazy<IReadOnlyList<ManifestDocument>> SystemDocuments = new(() => ReadAll(SystemFiles, NoCustomResources));

    private static IReadOnlyList<ManifestDocument> Installed => SystemDocuments.Value;

    /// <summary>The kinds of the CRDs in deploy/: custom resources (the examples) are checked against their schemas.</summary>
    private static readonly Lazy<IReadOnlyDictionary<(string, string), ResourceType>> CustomResourceKinds =
        new(() => StrictManifests.CustomResourceTypes(Directory.GetFiles(DeployDirectory.Path, "*", SearchOption.AllDirectories).Where(IsManifest)));

    private static IReadOnlyDictionary<(string, string), ResourceType> CustomResources => CustomResourceKinds.Value;

    /// <summary>Every manifest anywhere under deploy/ (examples and alternatives too), and the Kustomization.</summary>
    public static TheoryData<string> AllManifests()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(DeployDirectory.Path, "*", SearchOption.AllDirectories).Where(IsManifest).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(DeployDirectory.Path, file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AllManifests))]
    public void Every_manifest_under_deploy_parses_strictly(string file)
    {
        var path = Path.Combine(DeployDirectory.Path, file);

        var documents = StrictManifests.Read(File.ReadAllText(path), DeployDirectory.Relative(path), CustomResources);

        documents.ShouldNotBeEmpty();
        documents.Where(d => d.Kind != "Kustomization").ShouldAllBe(d => !string.IsNullOrEmpty(d.Name));
    }

    [Fact]
    public void Every_file_under_deploy_is_a_manifest_or_an_image_definition()
    {
        var others = Directory.GetFiles(DeployDirectory.Path, "*", SearchOption.AllDirectories)
            .Where(f => !IsManifest(f) && !f.EndsWith(".Containerfile", StringComparison.Ordinal))
            .Select(DeployDirectory.Relative);

        others.ShouldBeEmpty("a file the strict reader skips would go unchecked");
        AllManifests().Count.ShouldBeGreaterThan(SystemFiles.Length);
    }

    [Fact]
    public void Kubectl_apply_f_and_the_Kustomization_install_the_same_files_and_no_example()
    {
        var kustomization = StrictManifests.Read(File.ReadAllText(Path.Combine(DeployDirectory.Path, "Kustomization")), "deploy/Kustomization", CustomResources)
            .Single().As<Kustomization>();

        kustomization.Resources.ShouldBe(SystemFiles.Select(Path.GetFileName), "kubectl apply -k deploy/ and -f deploy/ must install the same objects");
        kustomization.Namespace.ShouldBeNull("a kustomize namespace would change the objects: -f and -k would then disagree");
        File.Exists(Path.Combine(DeployDirectory.Path, "kustomization.yaml")).ShouldBeFalse("kubectl apply -f deploy/ would send it to the API server");
        // A PodMigration starts a migration and a Pod runs a workload: examples are applied by hand only.
        Installed.Select(d => d.Kind).ShouldNotContain("PodMigration");
        Installed.Select(d => d.Kind).ShouldNotContain("Pod");
        Installed.Select(d => d.Kind).Distinct().Order(StringComparer.Ordinal).ShouldBe(
        [
            "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "DaemonSet", "Deployment", "Namespace",
            "PersistentVolume", "PersistentVolumeClaim", "Role", "RoleBinding", "RuntimeClass", "Service", "ServiceAccount",
            "ValidatingWebhookConfiguration",
        ]);
    }

    [Fact]
    public void Everything_namespaced_is_in_podmigrate_system_which_is_created_first()
    {
        Installed[0].Kind.ShouldBe("Namespace", "kubectl applies files in name order: namespaced objects need their namespace first");
        Installed[0].Name.ShouldBe(AgentContract.Namespace);
        var clusterScoped = new HashSet<string>(StringComparer.Ordinal) { "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "RuntimeClass", "ValidatingWebhookConfiguration" };
        foreach (var document in Installed)
        {
            if (clusterScoped.Contains(document.Kind))
            {
                document.Namespace.ShouldBeNull($"{document.Describe} is cluster-scoped");
            }
            else
            {
                document.Namespace.ShouldBe(AgentContract.Namespace, document.Describe);
            }
        }
        Installed[0].As<NamespaceResource>().Metadata.Labels!["pod-security.kubernetes.io/enforce"].ShouldBe("privileged", "the agent needs a privileged pod");
    }

    [Fact]
    public void The_clone_pods_RuntimeClass_names_the_nodes_podmigrate_handler()
    {
        var runtimeClass = Installed.Single(d => d.Kind == "RuntimeClass").As<RuntimeClass>();
        runtimeClass.Metadata.Name.ShouldBe("podmigrate");
        runtimeClass.Handler.ShouldBe("podmigrate", "scripts/cluster.sh and README's node installation name the containerd / CRI-O handler podmigrate");
    }

    [Fact]
    public void The_agent_runs_privileged_in_the_hosts_namespaces_with_containerd_the_share_and_its_certificate()
    {
        var agent = Single<DaemonSet>("podmigrate-agent");
        var pod = agent.Spec.Template.Spec;
        var container = pod.Containers.ShouldHaveSingleItem();

        container.SecurityContext!.Privileged.ShouldBe(true);
        pod.HostPid.ShouldBe(true);
        pod.HostNetwork.ShouldBe(true);
        pod.DnsPolicy.ShouldBe("ClusterFirstWithHostNet", "on the host network a pod resolves cluster names only so");
        pod.AutomountServiceAccountToken.ShouldBe(false, "the agent never calls the Kubernetes API");

        // containerd's socket, runc's state and the shims' bundles, the snapshots: at the host's own paths.
        HostPathMount(agent, "/run/containerd/containerd.sock").Type.ShouldBe("Socket");
        HostPathMount(agent, "/run/containerd").Type.ShouldBe("Directory");
        HostPathMount(agent, "/var/lib/containerd").Type.ShouldBe("Directory");
        // containerd writes CRIU images where the agent says: the state directory must be the same path on both sides.
        HostPathMount(agent, "/var/lib/podmigrate/agent");
        container.Args!.ShouldContain("--state-dir=/var/lib/podmigrate/agent");
        container.Args!.ShouldContain("--containerd-socket=/run/containerd/containerd.sock");

        var share = Volume(agent, "/var/lib/podmigrate/share").PersistentVolumeClaim.ShouldNotBeNull();
        Installed.ShouldContain(d => d.Kind == "PersistentVolumeClaim" && d.Name == share.ClaimName, $"the agent's claim {share.ClaimName} is part of the system");
        container.Args!.ShouldContain("--share=/var/lib/podmigrate/share");

        var tls = Volume(agent, "/etc/podmigrate/tls");
        tls.Secret!.SecretName.ShouldBe(AgentContract.TlsSecret);
        container.VolumeMounts!.Single(m => m.MountPath == "/etc/podmigrate/tls").ReadOnly.ShouldBe(true);
        tls.Secret.DefaultMode.ShouldBe(Convert.ToInt32("400", 8), "the private key is readable by its owner only");

        container.Env!.Single(e => e.Name == "NODE_NAME").ValueFrom!.FieldRef!.FieldPath.ShouldBe("spec.nodeName");
        container.Args!.ShouldContain("--node=$(NODE_NAME)");

        var ports = container.Ports!.ToDictionary(p => p.Name!, StringComparer.Ordinal);
        ports[AgentContract.GrpcPortName].Number.ShouldBe(AgentContract.GrpcPort);
        ports["metrics"].Number.ShouldBe(AgentContract.MetricsPort);
        ports.Values.ShouldAllBe(p => p.HostPort == p.Number, "on the host network hostPort must equal containerPort");
        container.Args!.ShouldContain($"--port={AgentContract.GrpcPort}");
        container.Args!.ShouldContain($"--metrics-port={AgentContract.MetricsPort}");
        container.ReadinessProbe!.TcpSocket!.Port.ToString().ShouldBeOneOf(AgentContract.GrpcPortName, AgentContract.GrpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture));

        SelectorMatchesTemplate(agent.Spec.Selector, agent.Spec.Template);
    }

    [Fact]
    public void The_agent_pods_are_what_the_controller_looks_for()
    {
        var document = Installed.Single(d => d.Kind == "DaemonSet" && d.Name == "podmigrate-agent");
        // A pod made from the template, read as the controller reads pods: through the product's model.
        var template = document.Json.GetProperty("spec").GetProperty("template");
        var podJson = $$"""{"apiVersion":"v1","kind":"Pod","metadata":{{template.GetProperty("metadata").GetRawText()}},"spec":{{template.GetProperty("spec").GetRawText()}}}""";
        var pod = KubeJson.Deserialize(podJson, PackageJson.TypeInfo<ProductPod>(), document.Describe);

        pod.Metadata.Labels!.ShouldContainKeyAndValue(AgentContract.NameLabel, AgentContract.Name);
        pod.Metadata.Labels!.ShouldContainKeyAndValue(AgentContract.ComponentLabel, AgentContract.Component);
        var grpc = pod.Spec.Containers.SelectMany(c => c.Ports ?? []).Where(p => p.Name == AgentContract.GrpcPortName).ShouldHaveSingleItem();
        grpc.ContainerPort.ShouldBe(AgentContract.GrpcPort);
        grpc.Protocol.ShouldBe("TCP");
        // The controller's Deployment must not be mistaken for an agent.
        Single<Deployment>("podmigrate-controller").Spec.Template.Metadata!.Labels![AgentContract.NameLabel].ShouldNotBe(AgentContract.Name);
    }

    [Fact]
    public void The_share_is_an_nfs_volume_kept_on_delete_and_reserved_for_the_agents_claim()
    {
        var pv = Single<PersistentVolume>("podmigrate-share");
        var claim = Single<PersistentVolumeClaim>("podmigrate-share");
        CheckShare(pv, claim);
        pv.Spec.Nfs.ShouldNotBeNull();
        pv.Spec.Nfs.Server.ShouldNotBeNullOrEmpty();
        pv.Spec.MountOptions!.ShouldContain("hard");

        // The SMB alternative is a drop-in replacement: same names, same guarantees, a CSI driver instead of NFS.
        var alternative = ReadAll([Path.Combine(DeployDirectory.Path, "alternatives", "share-smb.yaml")], NoCustomResources);
        var smb = alternative.Single(d => d.Value is PersistentVolume).As<PersistentVolume>();
        CheckShare(smb, alternative.Single(d => d.Value is PersistentVolumeClaim).As<PersistentVolumeClaim>());
        smb.Spec.Nfs.ShouldBeNull();
        smb.Spec.Csi!.Driver.ShouldBe("smb.csi.k8s.io");
        smb.Spec.MountOptions!.ShouldContain("file_mode=0600", "checkpoint files hold process memory");
    }

    [Fact]
    public void Every_binding_refers_to_a_role_and_service_accounts_that_exist()
    {
        var serviceAccounts = Installed.Where(d => d.Kind == "ServiceAccount").Select(d => $"{d.Namespace}/{d.Name}").ToHashSet(StringComparer.Ordinal);
        var bindings = Installed.Where(d => d.Value is RoleBinding or ClusterRoleBinding).ToList();
        bindings.Count.ShouldBe(2);
        foreach (var document in bindings)
        {
            var (roleRef, subjects) = document.Value switch
            {
                RoleBinding b => (b.RoleRef, b.Subjects),
                ClusterRoleBinding b => (b.RoleRef, b.Subjects),
                _ => throw new InvalidOperationException(),
            };
            roleRef.ApiGroup.ShouldBe("rbac.authorization.k8s.io", document.Describe);
            var role = roleRef.Kind == "ClusterRole"
                ? Installed.SingleOrDefault(d => d.Kind == "ClusterRole" && d.Name == roleRef.Name)
                : Installed.SingleOrDefault(d => d.Kind == "Role" && d.Name == roleRef.Name && d.Namespace == document.Namespace);
            role.ShouldNotBeNull($"{document.Describe} refers to {roleRef.Kind} {roleRef.Name}, which is not in deploy/");
            if (document.Value is ClusterRoleBinding)
            {
                roleRef.Kind.ShouldBe("ClusterRole", document.Describe);
            }
            foreach (var subject in subjects.ShouldNotBeNull())
            {
                subject.Kind.ShouldBe("ServiceAccount", $"{document.Describe}: only the project's own service accounts are bound");
                serviceAccounts.ShouldContain($"{subject.Namespace ?? document.Namespace}/{subject.Name}", $"{document.Describe} binds a ServiceAccount that is not in deploy/");
            }
        }
        foreach (var workload in Installed.Where(d => d.Value is Deployment or DaemonSet))
        {
            var spec = workload.Value is Deployment deployment ? deployment.Spec.Template.Spec : ((DaemonSet)workload.Value).Spec.Template.Spec;
            serviceAccounts.ShouldContain($"{workload.Namespace}/{spec.ServiceAccountName}", $"{workload.Describe} runs as a ServiceAccount that is not in deploy/");
        }
        // The agent's ServiceAccount is bound to nothing and mounts no token.
        bindings.SelectMany(b => b.Value is RoleBinding r ? r.Subjects! : ((ClusterRoleBinding)b.Value).Subjects!).ShouldNotContain(s => s.Name == "podmigrate-agent");
        Single<ServiceAccount>("podmigrate-agent").AutomountServiceAccountToken.ShouldBe(false);
    }

    [Fact]
    public void The_controller_may_do_what_it_does_and_nothing_else()
    {
        // What the controller calls, declared once in its code; what deploy/ grants, rule by rule, expanded the same way.
        static string Grant(string scope, string group, string resource, string? name, string verb) => $"{scope} {group}/{resource}{(name is null ? "" : "/" + name)}: {verb}";
        var required = ControllerPermissions.Required
            .Select(p => Grant(p.Scope == PermissionScope.Cluster ? "ClusterRole" : "Role", p.ApiGroup, p.Resource, p.ResourceName, p.Verb))
            .ToHashSet(StringComparer.Ordinal);
        IEnumerable<string> Expand(string scope, IEnumerable<PolicyRule> rules) =>
            from rule in rules
            from g in rule.ApiGroups ?? []
            from r in rule.Resources ?? []
            from n in rule.ResourceNames is { Count: > 0 } names ? names.Select(x => (string?)x) : [null]
            from v in rule.Verbs
            select Grant(scope, g, r, n, v);
        var granted = Expand("ClusterRole", Single<ClusterRole>("podmigrate-controller").Rules!)
            .Concat(Expand("Role", Single<Role>("podmigrate-controller").Rules!))
            .ToList();

        granted.ShouldBeUnique("a grant appears twice in deploy/20-rbac.yaml");
        required.Except(granted).ShouldBeEmpty("the controller makes these calls, deploy/20-rbac.yaml does not grant them (missing verbs)");
        granted.Except(required).ShouldBeEmpty("deploy/20-rbac.yaml grants these, the controller never makes the call (extra privilege)");
        // The Role is the controller's own namespace's.
        Single<Role>("podmigrate-controller").Metadata.Namespace.ShouldBe(AgentContract.Namespace);

        var everyRule = Installed.SelectMany(d => d.Value switch
        {
            ClusterRole c => c.Rules ?? [],
            Role r => r.Rules ?? [],
            _ => [],
        }).ToList();
        everyRule.ShouldAllBe(r => !r.Verbs.Contains("*") && !(r.Resources ?? new List<string>()).Contains("*") && !(r.ApiGroups ?? new List<string>()).Contains("*"));
    }

    [Fact]
    public void The_controller_runs_two_leader_electing_replicas_as_non_root_on_a_read_only_filesystem()
    {
        var controller = Single<Deployment>("podmigrate-controller");
        var pod = controller.Spec.Template.Spec;
        var container = pod.Containers.ShouldHaveSingleItem();

        controller.Spec.Replicas.ShouldBe(2);
        container.Args![0].ShouldBe("controller", "the image's entrypoint is the podmigrate CLI");
        container.Args!.ShouldContain("--leader-elect");
        container.Args!.ShouldContain($"--agent-tls-secret={AgentContract.ControllerTlsSecret}");
        container.Args!.ShouldContain($"--agent-tls-server-name={AgentContract.Name}");
        container.Args!.ShouldContain($"--agent-namespace={AgentContract.Namespace}");
        container.Env!.Single(e => e.Name == "POD_NAMESPACE").ValueFrom!.FieldRef!.FieldPath.ShouldBe("metadata.namespace");
        container.Env!.Single(e => e.Name == "POD_NAME").ValueFrom!.FieldRef!.FieldPath.ShouldBe("metadata.name");

        (pod.SecurityContext!.RunAsNonRoot == true || container.SecurityContext!.RunAsNonRoot == true).ShouldBeTrue();
        pod.SecurityContext.RunAsUser.ShouldNotBe(0);
        container.SecurityContext!.ReadOnlyRootFilesystem.ShouldBe(true);
        container.SecurityContext.AllowPrivilegeEscalation.ShouldBe(false);
        container.SecurityContext.Capabilities!.Drop.ShouldBe(["ALL"]);
        container.SecurityContext.Privileged.ShouldBeNull();
        pod.HostNetwork.ShouldBeNull();
        pod.HostPid.ShouldBeNull();
        container.Resources!.Requests!.Keys.ShouldBe(["cpu", "memory"], ignoreOrder: true);
        container.Resources.Limits!.Keys.ShouldBe(["cpu", "memory"], ignoreOrder: true);
        container.ReadinessProbe.ShouldNotBeNull();
        container.LivenessProbe.ShouldNotBeNull();
        SelectorMatchesTemplate(controller.Spec.Selector, controller.Spec.Template);
    }

    [Fact]
    public void The_eviction_webhook_reaches_the_controller_s_webhook_port_with_its_certificate_for_pods_eviction_only()
    {
        var controller = Single<Deployment>("podmigrate-controller");
        var service = Single<Service>("podmigrate-webhook");
        var configuration = Single<ValidatingWebhookConfiguration>("podmigrate-eviction");
        var pod = controller.Spec.Template.Spec;
        var container = pod.Containers.Single();
        var webhook = configuration.Webhooks.ShouldHaveSingleItem();

        service.Spec.Selector.ShouldNotBeNull().ShouldAllBe(l => controller.Spec.Template.Metadata!.Labels![l.Key] == l.Value, "the Service must select the controller's pods");
        var target = service.Spec.Ports.ShouldHaveSingleItem();
        var port = container.Ports!.Single(p => p.Name == target.TargetPort!.Name);
        container.Args!.ShouldContain($"--webhook-port={port.Number}");
        var tlsDir = container.Args!.Single(a => a.StartsWith("--webhook-tls-dir=", StringComparison.Ordinal))["--webhook-tls-dir=".Length..];
        var mount = container.VolumeMounts!.Single(m => m.MountPath == tlsDir);
        pod.Volumes!.Single(v => v.Name == mount.Name).Secret!.SecretName.ShouldBe("podmigrate-webhook-tls");

        webhook.ClientConfig.Service!.Name.ShouldBe(service.Metadata.Name);
        webhook.ClientConfig.Service.Namespace.ShouldBe(AgentContract.Namespace);
        webhook.ClientConfig.Service.Port.ShouldBe(target.Port);
        webhook.ClientConfig.Service.Path.ShouldBe(PodMigrate.Controller.Triggers.EvictionWebhookOptions.Path);
        webhook.ClientConfig.CaBundle.ShouldBeNull("the CA is the installer's (patched or injected), never shipped");
        var rule = webhook.Rules.ShouldNotBeNull().ShouldHaveSingleItem();
        rule.Operations.ShouldBe(["CREATE"]);
        rule.Resources.ShouldBe(["pods/eviction"], "only evictions: pods themselves never wait on the webhook");
        webhook.FailurePolicy.ShouldBe("Fail");
        webhook.SideEffects.ShouldBe("NoneOnDryRun");
        webhook.AdmissionReviewVersions.ShouldBe(["v1"]);
        webhook.NamespaceSelector!.MatchExpressions!.Single().Values.ShouldBe(["kube-system", AgentContract.Namespace], ignoreOrder: true,
            "the controller's own pods must stay evictable, or draining its node would wait on itself");
    }

    [Fact]
    public void The_crd_prints_phase_source_target_downtime_and_age()
    {
        var crd = Single<CustomResourceDefinition>("podmigrations.podmigrate.io");
        var version = crd.Spec.Versions.Single(v => v.Storage);

        version.AdditionalPrinterColumns!.Select(c => (c.Name, c.JsonPath)).ShouldBe(
        [
            ("Phase", ".status.phase"),
            ("Source", ".status.sourceNode"),
            ("Target", ".status.targetNode"),
            ("Downtime", ".status.downtime"),
            ("Age", ".metadata.creationTimestamp"),
        ]);
        version.Subresources!.Status.ShouldNotBeNull();
        version.Schema!.OpenApiV3Schema.Properties!["spec"].Required.ShouldBe(["podName"]);
    }

    [Fact]
    public void The_examples_are_valid_and_outside_what_kubectl_apply_f_deploy_installs()
    {
        var examples = Directory.GetFiles(Path.Combine(DeployDirectory.Path, "examples")).Order(StringComparer.Ordinal).ToList();
        var documents = ReadAll(examples, CustomResources);

        documents.Select(d => d.Kind).ShouldBe(["Pod", "Pod", "Pod", "PodMigration"]);
        documents.Single(d => d.Kind == "PodMigration").Json.GetProperty("spec").GetProperty("podName").GetString().ShouldBe("counter");
        foreach (var pod in examples.Where(e => documents.Any(d => d.File == DeployDirectory.Relative(e) && d.Kind == "Pod")))
        {
            // What `podmigrate node run-pod -f` reads them with.
            KubeManifests.ReadPod(File.ReadAllText(pod), pod).Spec.Containers.ShouldNotBeEmpty();
        }
    }

    public static TheoryData<string, string[]> BrokenManifests() => new()
    {
        {
            """
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: agent, namespace: podmigrate-system}
            spec:
              selector: {matchLabels: {app: agent}}
              template:
                metadata: {labels: {app: agent}}
                spec:
                  containers:
                    - name: agent
                      image: agent:1
                      securityContex: {privileged: true}
            """,
            ["broken.yaml document 1 (DaemonSet agent)", "unknown field \"spec.template.spec.containers[0].securityContex\""]
        },
        {
            """
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: first, namespace: podmigrate-system}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRole
            metadata: {name: second, lables: {a: b}}
            rules: [{apiGroups: [""], resources: [pods], verbs: [get], resourceName: [x]}]
            """,
            ["broken.yaml document 2 (ClusterRole second)", "unknown field \"metadata.lables\"", "unknown field \"rules[0].resourceName\""]
        },
        {
            """
            apiVersion: v1
            kind: PersistentVolume
            metadata: {name: share}
            spec: {capacity: {storage: 1Gi}, persistentVolumeReclaimPolicy: Retain, nfs: {server: nfs, path: /x, port: 2049}}
            """,
            ["broken.yaml document 1 (PersistentVolume share)", "unknown field \"spec.nfs.port\""]
        },
        {
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: controller}
            spec:
              replicas: two
              selector: {matchLabels: {app: c}}
              template: {spec: {containers: [{name: c, image: c:1}]}}
            """,
            ["broken.yaml document 1 (Deployment controller)", "field spec.replicas"]
        },
        {
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: controller}
            spec:
              selector: {matchLabels: {app: c}}
              template: {spec: {containers: [{name: c}]}}
            """,
            ["broken.yaml document 1 (Deployment controller)", "field spec.template.spec.containers[0]", "missing required properties", "image"]
        },
        {
            """
            apiVersion: podmigrate.io/v1alpha1
            kind: PodMigration
            metadata: {name: move}
            spec: {podName: counter, targetNod: node-b}
            """,
            ["broken.yaml document 1 (PodMigration move)", "unknown field \"spec.targetNod\"", "CRD podmigrations.podmigrate.io"]
        },
        {
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: settings}
            """,
            ["broken.yaml document 1 (ConfigMap settings)", "no strict model for apiVersion v1 kind ConfigMap"]
        },
        {
            // Duplicate keys: the real server's strict decoding rejects them too; YAML errors name line and column.
            """
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: sa, namespace: podmigrate-system}
            automountServiceAccountToken: false
            automountServiceAccountToken: true
            """,
            ["broken.yaml:5:1", "Duplicate key automountServiceAccountToken"]
        },
        {
            // 0400 is 256 to kubectl (YAML 1.1) and 400 to YAML 1.2: refused rather than guessed.
            """
            apiVersion: apps/v1
            kind: DaemonSet
            metadata: {name: agent}
            spec:
              selector: {matchLabels: {app: agent}}
              template:
                spec:
                  containers: [{name: agent, image: agent:1}]
                  volumes: [{name: tls, secret: {secretName: tls, defaultMode: 0400}}]
            """,
            ["broken.yaml:9:68", "0400 is octal to YAML 1.1 (kubectl) and decimal to YAML 1.2"]
        },
    };

    [Theory]
    [MemberData(nameof(BrokenManifests))]
    public void A_broken_manifest_is_rejected_naming_the_file_the_document_and_the_field(string yaml, string[] expected)
    {
        var error = Should.Throw<PodMigrateException>(() => StrictManifests.Read(yaml, "broken.yaml", CustomResources));

        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        foreach (var part in expected)
        {
            error.Message.ShouldContain(part);
        }
    }

    private static bool IsManifest(string file)
        => ManifestExtensions.Contains(Path.GetExtension(file), StringComparer.Ordinal) || Path.GetFileName(file) == "Kustomization";

    private static IReadOnlyList<ManifestDocument> ReadAll(IEnumerable<string> files, IReadOnlyDictionary<(string, string), ResourceType> customResources)
        => [.. files.SelectMany(f => StrictManifests.Read(File.ReadAllText(f), DeployDirectory.Relative(f), customResources))];

    private static T Single<T>(string name)
        => Installed.Where(d => d.Value is T && d.Name == name).ShouldHaveSingleItem($"one {typeof(T).Name} {name} in deploy/").As<T>();

    private static Volume Volume(DaemonSet daemonSet, string mountPath)
    {
        var mount = daemonSet.Spec.Template.Spec.Containers.SelectMany(c => c.VolumeMounts ?? []).Where(m => m.MountPath == mountPath)
            .ShouldHaveSingleItem($"a mount at {mountPath}");
        return daemonSet.Spec.Template.Spec.Volumes!.Single(v => v.Name == mount.Name);
    }

    /// <summary>The host path mounted at <paramref name="path"/> is the host's same path.</summary>
    private static HostPathVolumeSource HostPathMount(DaemonSet daemonSet, string path)
    {
        var hostPath = Volume(daemonSet, path).HostPath.ShouldNotBeNull($"{path} comes from the host");
        hostPath.Path.ShouldBe(path);
        return hostPath;
    }

    private static void CheckShare(PersistentVolume pv, PersistentVolumeClaim claim)
    {
        pv.Spec.PersistentVolumeReclaimPolicy.ShouldBe("Retain", "deleting the claim must not delete checkpoints");
        pv.Spec.AccessModes.ShouldBe(["ReadWriteMany"], "every node's agent mounts it");
        claim.Spec.AccessModes.ShouldBe(["ReadWriteMany"]);
        pv.Spec.StorageClassName.ShouldBe("", "statically provisioned: no default StorageClass may step in");
        claim.Spec.StorageClassName.ShouldBe("");
        claim.Spec.VolumeName.ShouldBe(pv.Metadata.Name);
        pv.Spec.ClaimRef!.Name.ShouldBe(claim.Metadata.Name);
        pv.Spec.ClaimRef.Namespace.ShouldBe(claim.Metadata.Namespace);
        claim.Spec.Resources!.Requests!["storage"].ShouldBe(pv.Spec.Capacity!["storage"]);
    }

    private static void SelectorMatchesTemplate(LabelSelector selector, PodTemplateSpec template)
    {
        selector.MatchExpressions.ShouldBeNull();
        foreach (var (key, value) in selector.MatchLabels.ShouldNotBeNull())
        {
            template.Metadata!.Labels!.ShouldContainKeyAndValue(key, value);
        }
    }
}
