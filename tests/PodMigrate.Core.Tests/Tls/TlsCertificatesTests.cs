using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging.Abstractions;
using PodMigrate.Core.Errors;
using PodMigrate.Core.IO;
using PodMigrate.Core.Tests.Store;
using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Tests.Tls;

/// <summary>The private CA, the TLS directory on disk, and loading it back (the agent's and the controller's view).</summary>
[Trait("Category", "Unit")]
public sealed class TlsCertificatesTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("pm-tls-").FullName;
    private readonly CertificateAuthority _ca = CertificateAuthority.Create("test CA", TimeSpan.FromDays(30));

    public void Dispose()
    {
        _ca.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task An_issued_server_certificate_round_trips_through_a_directory_with_its_names_usage_and_modes()
    {
        var issued = _ca.IssueServer("node-a", ["node-a", "localhost"], [IPAddress.Loopback, IPAddress.Parse("10.0.0.7")], TimeSpan.FromDays(7));
        var party = Path.Combine(_directory, "node-a");

        await issued.WriteDirectoryAsync(party, _ca.CertificatePem, CancellationToken.None);
        using var loaded = TlsCertificates.LoadDirectory(party);

        loaded.Certificate.HasPrivateKey.ShouldBeTrue();
        loaded.Certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false).ShouldBe("node-a");
        loaded.Certificate.Issuer.ShouldBe(_ca.Certificate.Subject);
        loaded.TrustedCas.Single().Thumbprint.ShouldBe(_ca.Certificate.Thumbprint);
        loaded.Intermediates.ShouldBeEmpty();
        loaded.Source.ShouldBe($"directory {party}");
        var names = loaded.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        names.EnumerateDnsNames().ShouldBe(["node-a", "localhost"]);
        names.EnumerateIPAddresses().ShouldBe([IPAddress.Loopback, IPAddress.Parse("10.0.0.7")]);
        loaded.Certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()
            .Select(o => o.Value).ShouldBe(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.3"], "server authentication, and code signing: agents sign their checkpoints");
        loaded.Certificate.GetECDsaPublicKey().ShouldNotBeNull().KeySize.ShouldBe(256);
        DurableFileSystem.GetMode(Path.Combine(party, TlsFileNames.Key)).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        DurableFileSystem.GetMode(Path.Combine(party, TlsFileNames.Certificate)).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        DurableFileSystem.GetMode(party).ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var chain = new X509Chain { ChainPolicy = { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck, CustomTrustStore = { _ca.Certificate } } };
        chain.Build(loaded.Certificate).ShouldBeTrue();
    }

    [Fact]
    public void A_ca_loaded_back_from_pem_issues_certificates_that_chain_to_it()
    {
        using var reloaded = CertificateAuthority.FromPem(_ca.CertificatePem, _ca.KeyPem, "test");
        var issued = reloaded.IssueClient("podmigrate-controller", TimeSpan.FromDays(400));

        using var client = TlsCertificates.FromPem(issued.CertificatePem, issued.KeyPem, _ca.CertificatePem, "test");

        client.Certificate.Issuer.ShouldBe(_ca.Certificate.Subject);
        // Never beyond the CA's own end.
        client.Certificate.NotAfter.ShouldBeLessThanOrEqualTo(_ca.Certificate.NotAfter);
        client.Certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages[0].Value.ShouldBe("1.3.6.1.5.5.7.3.2");
    }

    [Fact]
    public void A_ca_key_that_does_not_match_is_refused()
    {
        using var other = CertificateAuthority.Create("other", TimeSpan.FromDays(1));

        var e = Should.Throw<PodMigrateException>(() => CertificateAuthority.FromPem(_ca.CertificatePem, other.KeyPem, "dir/ca"));

        e.Kind.ShouldBe(ErrorKind.InvalidArgument);
        e.Message.ShouldContain("does not belong to the CA certificate");
    }

    [Fact]
    public async Task Missing_files_and_a_foreign_key_are_reported_with_their_paths()
    {
        var party = Path.Combine(_directory, "broken");
        var issued = _ca.IssueClient("c", TimeSpan.FromDays(1));
        var other = _ca.IssueClient("d", TimeSpan.FromDays(1));
        await issued.WriteDirectoryAsync(party, _ca.CertificatePem, CancellationToken.None);

        File.Delete(Path.Combine(party, TlsFileNames.CaBundle));
        var missing = Should.Throw<PodMigrateException>(() => TlsCertificates.LoadDirectory(party));
        var noDirectory = Should.Throw<PodMigrateException>(() => TlsCertificates.LoadDirectory(Path.Combine(_directory, "absent")));
        await IssuedCertificate.WritePemAsync(Path.Combine(party, TlsFileNames.CaBundle), _ca.CertificatePem, secret: false, CancellationToken.None);
        await IssuedCertificate.WritePemAsync(Path.Combine(party, TlsFileNames.Key), other.KeyPem, secret: true, CancellationToken.None);
        var mismatch = Should.Throw<PodMigrateException>(() => TlsCertificates.LoadDirectory(party));
        var notPem = Should.Throw<PodMigrateException>(() => TlsCertificates.FromPem("garbage", issued.KeyPem, _ca.CertificatePem, "secret ns/x"));

        missing.Kind.ShouldBe(ErrorKind.NotFound);
        missing.Message.ShouldContain(Path.Combine(party, TlsFileNames.CaBundle));
        noDirectory.Kind.ShouldBe(ErrorKind.NotFound);
        mismatch.Kind.ShouldBe(ErrorKind.InvalidArgument);
        mismatch.Message.ShouldContain("does not belong to the certificate");
        notPem.Message.ShouldBe("secret ns/x: tls.crt: holds no PEM certificate");
    }

    [Fact]
    public async Task Files_are_reloaded_when_their_content_changes_and_a_broken_set_keeps_the_previous_one()
    {
        var party = Path.Combine(_directory, "rotating");
        await _ca.IssueServer("first", ["first"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(party, _ca.CertificatePem, CancellationToken.None);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var files = TlsCertificateFiles.ForDirectory(party, clock, NullLogger.Instance);
        var first = files.Current;

        await _ca.IssueServer("second", ["second"], [], TimeSpan.FromDays(1)).WriteDirectoryAsync(party, _ca.CertificatePem, CancellationToken.None);
        var beforeInterval = files.Current;
        clock.Advance(TlsCertificateFiles.CheckInterval);
        var second = files.Current;
        await IssuedCertificate.WritePemAsync(Path.Combine(party, TlsFileNames.Key), _ca.IssueClient("x", TimeSpan.FromDays(1)).KeyPem, secret: true, CancellationToken.None);
        clock.Advance(TlsCertificateFiles.CheckInterval);
        var afterBrokenRotation = files.Current;

        first.Certificate.Subject.ShouldContain("CN=first");
        beforeInterval.ShouldBeSameAs(first);
        second.Certificate.Subject.ShouldContain("CN=second");
        afterBrokenRotation.ShouldBeSameAs(second);
    }
}
