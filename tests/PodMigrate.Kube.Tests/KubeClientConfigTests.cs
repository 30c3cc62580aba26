using System.Text;
using k8s;
using PodMigrate.Kube.ApiServer;
using PodMigrate.Kube.Client;

namespace PodMigrate.Kube.Tests;

/// <summary>
/// Configuration and authentication come from the KubernetesClient package: these tests pin what PodMigrate relies on
/// (the kubeconfig the apiserver verb writes reads back; an exec credential plugin, as EKS/GKE/AKS use, authenticates).
/// </summary>
[Trait("Category", "Integration")]
public sealed class KubeClientConfigTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("podmigrate-kubeconfig-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task The_kubeconfig_the_server_writes_reads_back_with_token_ca_and_namespace()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { BearerToken = "s3cret", UseTls = true });
        var path = Path.Combine(_directory, "config");
        await api.Server.WriteKubeconfigAsync(path, api.Token);
        File.GetUnixFileMode(path).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var config = await KubernetesClientConfiguration.BuildConfigFromConfigFileAsync(new FileInfo(path));
        config.Host.TrimEnd('/').ShouldBe(api.Server.BaseAddress.ToString().TrimEnd('/'));
        config.AccessToken.ShouldBe("s3cret");
        config.Namespace.ShouldBe("default");
        config.SslCaCerts.ShouldNotBeNull().Count.ShouldBe(1);
        using var client = new KubernetesApiClient(config);
        (await client.ListAsync(KubeResources.Namespaces, null, null, api.Token)).Items.ShouldNotBeEmpty();
    }

    [Fact]
    public async Task An_exec_credential_plugin_supplies_the_token()
    {
        await using var api = await ApiServerFixture.StartAsync(new ApiServerOptions { BearerToken = "from-plugin" });
        // What aws eks get-token / gke-gcloud-auth-plugin / kubelogin print: an ExecCredential with the token in its status.
        var plugin = Path.Combine(_directory, "credential-plugin");
        File.WriteAllText(plugin, """
            #!/bin/sh
            echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"from-plugin"}}'
            """);
        File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var yaml = $"""
            apiVersion: v1
            kind: Config
            current-context: plugged
            clusters:
            - name: local
              cluster: {"{"}server: "{api.Server.BaseAddress.ToString().TrimEnd('/')}"{"}"}
            users:
            - name: exec
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: {plugin}
                  interactiveMode: Never
            contexts:
            - {"{"}name: plugged, context: {"{"}cluster: local, user: exec, namespace: team{"}"}{"}"}
            """;
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(yaml));
        var config = await KubernetesClientConfiguration.BuildConfigFromConfigFileAsync(stream);
        config.Namespace.ShouldBe("team");

        using var client = new KubernetesApiClient(config);
        (await client.ListAsync(KubeResources.Namespaces, null, null, api.Token)).Items.ShouldNotBeEmpty();
        client.DefaultNamespace.ShouldBe("team");
    }
}
