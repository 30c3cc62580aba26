using System.Text;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Client;

namespace PodMigrate.Kube.Tests;

[Trait("Category", "Unit")]
public sealed class KubeClientConfigTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("podmigrate-kubeconfig-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task The_current_context_picks_cluster_and_user_with_data_and_relative_files()
    {
        using var timeout = new CancellationTokenSource(ApiServerFixture.TestTimeout);
        File.WriteAllText(Path.Combine(_directory, "ca.pem"), "CA-PEM");
        var key = Convert.ToBase64String(Encoding.UTF8.GetBytes("KEY-PEM"));
        var yaml = $"""
            apiVersion: v1
            kind: Config
            current-context: b
            clusters:
            - {"{"}name: one, cluster: {"{"}server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true{"}"}{"}"}
            - name: two
              cluster: {"{"}server: "https://10.0.0.2:6443", certificate-authority: ca.pem{"}"}
            users:
            - name: tok
              user: {"{"}token: abc{"}"}
            - name: cert
              user: {"{"}client-certificate-data: {Convert.ToBase64String(Encoding.UTF8.GetBytes("CERT-PEM"))}, client-key-data: {key}{"}"}
            contexts:
            - {"{"}name: a, context: {"{"}cluster: one, user: tok{"}"}{"}"}
            - {"{"}name: b, context: {"{"}cluster: two, user: cert, namespace: team{"}"}{"}"}
            """;
        var path = Path.Combine(_directory, "config");
        File.WriteAllText(path, yaml);

        var b = await KubeClientConfig.FromKubeconfigFileAsync(path, context: null, timeout.Token);
        b.Server.ShouldBe(new Uri("https://10.0.0.2:6443"));
        b.CertificateAuthorityPem.ShouldBe("CA-PEM");
        b.ClientCertificatePem.ShouldBe("CERT-PEM");
        b.ClientKeyPem.ShouldBe("KEY-PEM");
        b.Namespace.ShouldBe("team");
        b.InsecureSkipTlsVerify.ShouldBeFalse();

        var a = await KubeClientConfig.FromKubeconfigFileAsync(path, "a", timeout.Token);
        a.BearerToken.ShouldBe("abc");
        a.InsecureSkipTlsVerify.ShouldBeTrue();
        a.Namespace.ShouldBe("default");

        (await Should.ThrowAsync<PodMigrateException>(() => KubeClientConfig.FromKubeconfigFileAsync(path, "nope", timeout.Token))).Kind.ShouldBe(ErrorKind.InvalidArgument);

        // What the apiserver verb writes reads back the same.
        var again = await KubeClientConfig.FromKubeconfigAsync(b.ToKubeconfigYaml(), path, null, timeout.Token);
        again.ShouldBe(b);
    }

    [Fact]
    public async Task In_cluster_config_reads_the_service_account_and_the_service_environment()
    {
        using var timeout = new CancellationTokenSource(ApiServerFixture.TestTimeout);
        File.WriteAllText(Path.Combine(_directory, "token"), "sa-token\n");
        File.WriteAllText(Path.Combine(_directory, "ca.crt"), "SA-CA");
        File.WriteAllText(Path.Combine(_directory, "namespace"), "podmigrate-system");
        var env = new Dictionary<string, string> { ["KUBERNETES_SERVICE_HOST"] = "10.96.0.1", ["KUBERNETES_SERVICE_PORT"] = "443" };

        var config = await KubeClientConfig.InClusterAsync(_directory, env.GetValueOrDefault, timeout.Token);
        config.Server.ShouldBe(new Uri("https://10.96.0.1:443"));
        config.BearerToken.ShouldBe("sa-token");
        config.CertificateAuthorityPem.ShouldBe("SA-CA");
        config.Namespace.ShouldBe("podmigrate-system");

        (await Should.ThrowAsync<PodMigrateException>(() => KubeClientConfig.InClusterAsync(_directory, _ => null, timeout.Token))).Kind.ShouldBe(ErrorKind.FailedPrecondition);
    }
}
