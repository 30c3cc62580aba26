using System.CommandLine;
using System.Net;
using System.Text.RegularExpressions;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Tls;

namespace PodMigrate.Cli.Commands;

/// <summary>
/// `podmigrate certs generate`: a private CA, one server certificate per agent and one client certificate for the
/// controller (and the CLI), for mutual TLS between them, with no openssl. Layout of --out (see <see cref="PkiLayout"/>):
/// ca.crt + ca.key, agents/&lt;node&gt;/ and clients/&lt;name&gt;/, each a TLS directory (tls.crt, tls.key, ca.crt) that an agent's
/// --tls-dir, $PODMIGRATE_TLS_DIR, or a kubernetes.io/tls Secret takes as it is.
/// </summary>
internal static partial class CertsCommand
{
    public static Command Create()
    {
        var command = new Command("certs", "Certificates for mutual TLS between the controller, the CLI and the agents");
        command.Subcommands.Add(Generate());
        return command;
    }

    private static Command Generate()
    {
        var output = new Option<string>("--out") { Description = "Directory to write into (created mode 0700); an existing ca.crt + ca.key there is reused", Required = true };
        var nodes = new Option<string[]>("--node") { Description = "A node whose agent gets a server certificate (repeatable)", Required = true, AllowMultipleArgumentsPerToken = false };
        var ips = new Option<string[]>("--ip") { Description = "An extra IP address in every agent certificate, e.g. a node's IP (repeatable)", AllowMultipleArgumentsPerToken = false };
        var controller = new Option<string>("--controller-name") { Description = "Name (CN and DNS SAN) of the client certificate", DefaultValueFactory = _ => "podmigrate-controller" };
        var days = new Option<int>("--days") { Description = "Validity of the agent and client certificates", DefaultValueFactory = _ => 365 };
        var caDays = new Option<int>("--ca-days") { Description = "Validity of a new CA", DefaultValueFactory = _ => 3650 };
        var webhook = new Option<string?>("--webhook-service")
        {
            Description = "SERVICE.NAMESPACE of the controller's eviction webhook: a TLS server certificate (no code signing) in webhook/ "
                + "for SERVICE.NAMESPACE.svc, localhost and 127.0.0.1; its ca.crt is the caBundle of the ValidatingWebhookConfiguration",
        };
        var command = new Command("generate", "Write a CA, a server certificate per agent (SAN: node name, localhost, 127.0.0.1, --ip) and a client certificate (PEM, keys 0600)")
        {
            output, nodes, ips, controller, days, caDays, webhook,
        };
        command.SetAction((parse, ct) => ExitCodes.RunAsync(async () =>
        {
            var layout = new PkiLayout(parse.GetValue(output)!);
            var nodeNames = parse.GetValue(nodes)!.Select(n => ValidName(n, "--node")).Distinct(StringComparer.Ordinal).ToList();
            var clientName = ValidName(parse.GetValue(controller)!, "--controller-name");
            var extraIps = (parse.GetValue(ips) ?? []).Select(ParseIp).ToList();
            var validity = Days(parse.GetValue(days), "--days");
            var caValidity = Days(parse.GetValue(caDays), "--ca-days");

            Directory.CreateDirectory(layout.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var (ca, reused) = await OpenOrCreateCaAsync(layout, caValidity, ct);
            using (ca)
            {
                Console.WriteLine(reused ? $"CA        {layout.CaCertificate} (reused)" : $"CA        {layout.CaCertificate}, key {layout.CaKey}");
                var caPem = ca.CertificatePem;
                foreach (var node in nodeNames)
                {
                    var issued = ca.IssueServer(node, [node, "localhost"], [IPAddress.Loopback, .. extraIps], validity);
                    await issued.WriteDirectoryAsync(layout.Agent(node), caPem, ct);
                    Console.WriteLine($"agent     {layout.Agent(node)}  (SAN {string.Join(", ", [node, "localhost", "127.0.0.1", .. extraIps.Select(i => i.ToString())])})");
                }
                await ca.IssueClient(clientName, validity).WriteDirectoryAsync(layout.Client(clientName), caPem, ct);
                Console.WriteLine($"client    {layout.Client(clientName)}  (CN {clientName})");
                if (parse.GetValue(webhook) is { } service)
                {
                    var svc = ValidName(service, "--webhook-service");
                    if (!svc.Contains('.', StringComparison.Ordinal))
                    {
                        throw PodMigrateException.InvalidArgument($"--webhook-service {svc}: expected SERVICE.NAMESPACE, e.g. podmigrate-webhook.podmigrate-system");
                    }
                    string[] dns = [$"{svc}.svc", $"{svc}.svc.cluster.local", "localhost"];
                    await ca.IssueTlsServer($"{svc}.svc", dns, [IPAddress.Loopback, .. extraIps], validity).WriteDirectoryAsync(layout.Webhook, caPem, ct);
                    Console.WriteLine($"webhook   {layout.Webhook}  (SAN {string.Join(", ", [.. dns, "127.0.0.1", .. extraIps.Select(i => i.ToString())])})");
                }
            }
            return ExitCodes.Ok;
        }, ct));
        return command;
    }

    private static async Task<(CertificateAuthority Ca, bool Reused)> OpenOrCreateCaAsync(PkiLayout layout, TimeSpan validity, CancellationToken cancellationToken)
    {
        var haveCertificate = File.Exists(layout.CaCertificate);
        var haveKey = File.Exists(layout.CaKey);
        if (haveCertificate && haveKey)
        {
            return (CertificateAuthority.FromPem(await File.ReadAllTextAsync(layout.CaCertificate, cancellationToken), await File.ReadAllTextAsync(layout.CaKey, cancellationToken), layout.CaCertificate), true);
        }
        if (haveCertificate || haveKey)
        {
            throw PodMigrateException.FailedPrecondition($"{layout.Root} has only one of {PkiLayout.CaCertificateName} and {PkiLayout.CaKeyName}: restore the other, or remove both for a new CA");
        }
        var ca = CertificateAuthority.Create("PodMigrate CA", validity);
        // The key first: a CA certificate without its key would be reused as "only one of the two".
        await IssuedCertificate.WritePemAsync(layout.CaKey, ca.KeyPem, secret: true, cancellationToken);
        await IssuedCertificate.WritePemAsync(layout.CaCertificate, ca.CertificatePem, secret: false, cancellationToken);
        return (ca, false);
    }

    private static string ValidName(string name, string option)
        => DnsLabelPattern().IsMatch(name) ? name : throw PodMigrateException.InvalidArgument($"{option} {name}: not a DNS name (lower-case letters, digits, '-' and '.')");

    private static IPAddress ParseIp(string text)
        => IPAddress.TryParse(text, out var ip) ? ip : throw PodMigrateException.InvalidArgument($"--ip {text}: not an IP address");

    private static TimeSpan Days(int days, string option)
        => days > 0 ? TimeSpan.FromDays(days) : throw PodMigrateException.InvalidArgument($"{option} must be positive");

    /// <summary>A Kubernetes node name: a DNS-1123 subdomain.</summary>
    [GeneratedRegex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")]
    private static partial Regex DnsLabelPattern();
}

/// <summary>Where `podmigrate certs generate` puts what, under its --out directory.</summary>
internal sealed record PkiLayout(string Root)
{
    public const string CaCertificateName = TlsFileNames.CaBundle;
    public const string CaKeyName = "ca.key";

    public string CaCertificate => Path.Combine(Root, CaCertificateName);

    public string CaKey => Path.Combine(Root, CaKeyName);

    /// <summary>An agent's TLS directory: its --tls-dir, or the content of its Secret.</summary>
    public string Agent(string node) => Path.Combine(Root, "agents", node);

    /// <summary>A client's TLS directory: the controller's Secret, the CLI's --tls-dir.</summary>
    public string Client(string name) => Path.Combine(Root, "clients", name);

    /// <summary>The eviction webhook's TLS directory: the controller's --webhook-tls-dir, or its Secret podmigrate-webhook-tls.</summary>
    public string Webhook => Path.Combine(Root, "webhook");
}
