using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Tls;

namespace PodMigrate.Core.Tests.Tls;

/// <summary>
/// Signing a manifest's bytes and verifying them: only an agent certificate of a trusted CA, over exactly these bytes,
/// valid when the checkpoint was made, passes; everything else is PermissionDenied with a message that says why.
/// </summary>
[Trait("Category", "Unit")]
public sealed class CheckpointSignaturesTests
{
    private const int Timeout = 30_000;
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);
    private static readonly byte[] Manifest = Encoding.UTF8.GetBytes("{\"checkpointId\": \"ck-1\", \"archiveSha256\": \"00ff\"}");

    private readonly FakeTimeProvider _time = new(Now);

    [Fact(Timeout = Timeout)]
    public Task A_manifest_signed_by_an_agent_of_the_trusted_ca_verifies_and_names_its_signer()
    {
        var signatures = SigningKit.Agent("node-a", _time);

        var signature = signatures.Sign(Manifest).ShouldNotBeNull();
        var signer = signatures.Verify("ck-1", Manifest, () => Now, signature);

        signer.ShouldNotBeNull().Subject.ShouldContain("CN=node-a");
        // Another agent of the same CA accepts it too: that is what a restoring node does.
        SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => Now, signature).ShouldBe(signer);
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task An_unsigned_manifest_is_refused_unless_unsigned_ones_are_allowed()
    {
        var error = Should.Throw<PodMigrateException>(() => SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => Now, signatureFile: null));

        error.Kind.ShouldBe(ErrorKind.PermissionDenied);
        error.Message.ShouldContain("ck-1");
        error.Message.ShouldContain("not signed");
        SigningKit.Agent("node-b", _time, allowUnsigned: true).Verify("ck-1", Manifest, () => Now, signatureFile: null).ShouldBeNull();
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task A_signature_by_another_ca_is_refused_even_when_unsigned_ones_are_allowed()
    {
        using var forger = SigningKit.NewCa("Forger CA");
        var forged = SigningKit.Agent("node-a", _time, forger).Sign(Manifest);

        foreach (var reader in new[] { SigningKit.Agent("node-b", _time), SigningKit.Agent("node-b", _time, allowUnsigned: true) })
        {
            var error = Should.Throw<PodMigrateException>(() => reader.Verify("ck-1", Manifest, () => Now, forged));
            error.Kind.ShouldBe(ErrorKind.PermissionDenied);
            error.Message.ShouldContain("not trusted");
            error.Message.ShouldContain("Forger CA");
        }
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task An_altered_manifest_is_refused_as_altered()
    {
        var signatures = SigningKit.Agent("node-a", _time);
        var signature = signatures.Sign(Manifest);
        var altered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Manifest).Replace("00ff", "00fe", StringComparison.Ordinal));
        var reformatted = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Manifest) + "\n");

        foreach (var manifest in new[] { altered, reformatted })
        {
            var error = Should.Throw<PodMigrateException>(() => signatures.Verify("ck-1", manifest, () => Now, signature));
            error.Kind.ShouldBe(ErrorKind.PermissionDenied);
            error.Message.ShouldContain("altered");
        }
        return Task.CompletedTask;
    }

    [Theory(Timeout = Timeout)]
    [InlineData("flipped-signature")]
    [InlineData("swapped-certificate")]
    [InlineData("unknown-algorithm")]
    [InlineData("not-json")]
    [InlineData("no-certificate")]
    public Task An_altered_signature_file_is_refused(string alteration)
    {
        var signatures = SigningKit.Agent("node-a", _time);
        var file = JsonNode.Parse(signatures.Sign(Manifest))!.AsObject();
        switch (alteration)
        {
            case "flipped-signature":
                var bytes = Convert.FromBase64String(file["signature"]!.GetValue<string>());
                bytes[^1] ^= 1;
                file["signature"] = Convert.ToBase64String(bytes);
                break;
            case "swapped-certificate":
                // Another trusted agent's certificate in front of node-a's signature.
                var other = SigningKit.AgentMaterial("node-b");
                file["certificates"] = new JsonArray(Convert.ToBase64String(other.Certificate.RawData));
                break;
            case "unknown-algorithm":
                file["algorithm"] = "none";
                break;
            case "no-certificate":
                file["certificates"] = new JsonArray();
                break;
        }
        var content = alteration == "not-json" ? "garbage"u8.ToArray() : Encoding.UTF8.GetBytes(file.ToJsonString());

        var error = Should.Throw<PodMigrateException>(() => signatures.Verify("ck-1", Manifest, () => Now, content));

        error.Kind.ShouldBe(ErrorKind.PermissionDenied, error.Message);
        error.Message.ShouldContain("ck-1 refused");
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task A_client_certificate_of_the_trusted_ca_cannot_sign_checkpoints()
    {
        var issued = SigningKit.Ca.IssueClient("podmigrate-controller", TimeSpan.FromDays(365 * 30));
        var controller = TlsCertificates.FromPem(issued.CertificatePem, issued.KeyPem, SigningKit.Ca.CertificatePem, "controller");
        var signature = SigningKit.Mixed(controller, controller, _time).Sign(Manifest);

        var error = Should.Throw<PodMigrateException>(() => SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => Now, signature));

        error.Kind.ShouldBe(ErrorKind.PermissionDenied);
        error.Message.ShouldContain("not an agent certificate");
        // And an agent that was handed such a certificate refuses to start signing with it.
        var start = Should.Throw<PodMigrateException>(() => SigningKit.Mixed(controller, controller, _time).CheckOwnCertificate());
        start.Kind.ShouldBe(ErrorKind.FailedPrecondition);
        start.Message.ShouldContain("certs generate");
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task The_ca_itself_is_no_signer()
    {
        // A CA certificate with its key as "agent": the chain would build (it is its own anchor); it is still refused.
        var ca = TlsCertificates.FromPem(SigningKit.Ca.CertificatePem, SigningKit.Ca.KeyPem, SigningKit.Ca.CertificatePem, "the CA");
        var signature = SigningKit.Mixed(ca, ca, _time).Sign(Manifest);

        var error = Should.Throw<PodMigrateException>(() => SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => Now, signature));

        error.Kind.ShouldBe(ErrorKind.PermissionDenied);
        error.Message.ShouldContain("CA certificate");
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task A_checkpoint_stays_valid_after_its_signer_expires_or_rotates_and_only_while_its_ca_is_trusted()
    {
        // A short-lived agent certificate issued in 2020, a checkpoint made while it was valid, verified years later.
        var expired = SigningKit.AgentMaterial("node-a", validity: TimeSpan.FromDays(30));
        var signature = SigningKit.Mixed(expired, expired, _time).Sign(Manifest);
        var madeAt = SigningKit.Epoch.AddDays(1);

        SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => madeAt, signature).ShouldNotBeNull();
        // A manifest that claims a time outside the certificate's validity is refused.
        var late = Should.Throw<PodMigrateException>(() => SigningKit.Agent("node-b", _time).Verify("ck-1", Manifest, () => SigningKit.Epoch.AddDays(60), signature));
        late.Kind.ShouldBe(ErrorKind.PermissionDenied);
        late.Message.ShouldContain("not trusted");

        // CA rotation: a node that trusts only the new CA refuses it; with the old CA kept as an extra anchor it accepts it.
        using var newCa = SigningKit.NewCa("PodMigrate CA 2");
        var newAgent = SigningKit.AgentMaterial("node-b", newCa);
        Should.Throw<PodMigrateException>(() => SigningKit.Mixed(newAgent, newAgent, _time).Verify("ck-1", Manifest, () => madeAt, signature))
            .Kind.ShouldBe(ErrorKind.PermissionDenied);
        var oldAndNew = new X509Certificate2Collection();
        oldAndNew.ImportFromPem(newCa.CertificatePem + "\n" + SigningKit.Ca.CertificatePem);
        oldAndNew.Count.ShouldBe(2);
        new CheckpointSignatures(() => newAgent, () => oldAndNew, allowUnsigned: false, _time).Verify("ck-1", Manifest, () => madeAt, signature).ShouldNotBeNull();
        return Task.CompletedTask;
    }

    [Fact(Timeout = Timeout)]
    public Task A_manifest_made_in_the_future_is_refused()
    {
        var signatures = SigningKit.Agent("node-a", _time);
        var signature = signatures.Sign(Manifest);

        var error = Should.Throw<PodMigrateException>(() => signatures.Verify("ck-1", Manifest, () => Now.AddHours(1), signature));

        error.Kind.ShouldBe(ErrorKind.PermissionDenied);
        error.Message.ShouldContain("future");
        return Task.CompletedTask;
    }
}
