using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;
using PodMigrate.Core.Tests.Archive;
using PodMigrate.Core.Tests.Tls;
using PodMigrate.Core.Tls;
using static PodMigrate.Core.Tests.Store.StoreTestKit;

namespace PodMigrate.Core.Tests.Store;

/// <summary>
/// The store hands out only checkpoints a trusted agent signed, unaltered: whoever can write to the share can list
/// what they plant, but every read that returns data (get, verify, extract, image layer) refuses it with
/// PermissionDenied before the archive is opened or anything is written. The signature covers the manifest, the
/// manifest the archive and every file in it.
/// </summary>
[Trait("Category", "Unit")]
public sealed class CheckpointTrustTests
{
    private const int Timeout = 60_000;

    [Fact(Timeout = Timeout)]
    public async Task A_published_checkpoint_is_signed_and_every_read_names_its_signer()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));

        var published = await store.PublishAsync(Request("ck-1", Source(temp, 1000)), null, CancellationToken.None);

        File.Exists(Path.Combine(published.Directory, CheckpointLayout.SignatureFile)).ShouldBeTrue();
        (await store.GetAsync(published.Id, CancellationToken.None)).Signer.ShouldNotBeNull().Subject.ShouldContain("CN=node-a");
        (await store.VerifyAsync(published.Id, CancellationToken.None)).Signer.ShouldNotBeNull();
        (await store.ExtractAsync(published.Id, temp.Combine("target"), CancellationToken.None)).Signer.ShouldNotBeNull();
        (await store.WriteImageLayerAsync(published.Id, new MemoryStream(), new CheckpointTarCopyOptions(), CancellationToken.None)).Checkpoint.Signer.ShouldNotBeNull();
        // Another agent of the same CA reads it: that is the restoring node.
        var target = NewStore(temp.Combine("share"), new FakeTimeProvider(Start), signatures: SigningKit.Agent("node-b", new FakeTimeProvider(Start)));
        (await target.VerifyAsync(published.Id, CancellationToken.None)).Signer!.Subject.ShouldContain("CN=node-a");
    }

    [Theory(Timeout = Timeout)]
    [InlineData("unsigned", "not signed")]
    [InlineData("signed-by-a-forger-ca", "not trusted")]
    [InlineData("altered-manifest", "altered")]
    [InlineData("signature-of-another-checkpoint", "altered")]
    [InlineData("renamed", "another name")]
    public async Task A_forged_or_altered_checkpoint_is_refused_by_every_read_before_anything_is_written(string forgery, string reason)
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var store = NewStore(temp.Combine("share"), time);
        var genuine = await store.PublishAsync(Request("ck-genuine", Source(temp, 1000)), null, CancellationToken.None);
        var other = await store.PublishAsync(Request("ck-other", Source(temp, 1000), pod: "memhog"), null, CancellationToken.None);
        var id = await ForgeAsync(forgery, store, genuine, other, time);

        // Listed (a listing shows what is on the share; a manifest naming another checkpoint is skipped as damaged), never handed out.
        if (forgery != "renamed")
        {
            (await store.ListAsync(null, CancellationToken.None)).Select(c => c.Id).ShouldContain(id);
        }
        var target = temp.Combine("restore", "target");
        foreach (var read in new Func<Task>[]
        {
            () => store.GetAsync(id, CancellationToken.None),
            () => store.VerifyAsync(id, CancellationToken.None),
            () => store.ExtractAsync(id, target, CancellationToken.None),
            () => store.WriteImageLayerAsync(id, new MemoryStream(), new CheckpointTarCopyOptions(), CancellationToken.None),
        })
        {
            var error = await Should.ThrowAsync<PodMigrateException>(read);
            error.Kind.ShouldBe(ErrorKind.PermissionDenied, error.Message);
            error.Message.ShouldContain($"checkpoint {id}");
            error.Message.ShouldContain(reason);
        }

        Path.Exists(temp.Combine("restore")).ShouldBeFalse("nothing may be staged for a refused checkpoint");
    }

    [Fact(Timeout = Timeout)]
    public async Task An_altered_archive_under_its_original_manifest_is_data_loss()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var published = await store.PublishAsync(Request("ck-1", Source(temp, 100_000)), null, CancellationToken.None);
        ArchiveTestData.FlipByte(published.ArchivePath, 5000);

        (await store.GetAsync(published.Id, CancellationToken.None)).Signer.ShouldNotBeNull("the manifest itself is intact");
        var error = await Should.ThrowAsync<PodMigrateException>(() => store.ExtractAsync(published.Id, temp.Combine("target"), CancellationToken.None));
        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        Path.Exists(temp.Combine("target")).ShouldBeFalse();
    }

    [Fact(Timeout = Timeout)]
    public async Task Pinning_and_unpinning_leave_the_signed_manifest_untouched()
    {
        using var temp = new TempDirectory();
        var store = NewStore(temp.Combine("share"), new FakeTimeProvider(Start));
        var published = await store.PublishAsync(Request("ck-1", Source(temp, 1000), pinned: true), null, CancellationToken.None);
        var manifestPath = Path.Combine(published.Directory, CheckpointLayout.ManifestFile);
        var signed = await File.ReadAllBytesAsync(manifestPath);
        published.Manifest.Pinned.ShouldBeTrue();

        (await store.GetAsync(published.Id, CancellationToken.None)).Manifest.Pinned.ShouldBeTrue();
        (await store.SetPinnedAsync(published.Id, pinned: false, CancellationToken.None)).Manifest.Pinned.ShouldBeFalse();
        (await store.VerifyAsync(published.Id, CancellationToken.None)).Manifest.Pinned.ShouldBeFalse();
        (await store.SetPinnedAsync(published.Id, pinned: true, CancellationToken.None)).Manifest.Pinned.ShouldBeTrue();
        (await store.VerifyAsync(published.Id, CancellationToken.None)).Manifest.Pinned.ShouldBeTrue();

        (await File.ReadAllBytesAsync(manifestPath)).ShouldBe(signed);
    }

    [Fact(Timeout = Timeout)]
    public async Task A_store_without_signing_material_publishes_nothing_and_hands_out_nothing()
    {
        using var temp = new TempDirectory();
        var share = temp.Combine("share");
        var published = await NewStore(share, new FakeTimeProvider(Start)).PublishAsync(Request("ck-1", Source(temp, 1000)), null, CancellationToken.None);
        var bare = new FileSystemCheckpointStore(new FileSystemCheckpointStoreOptions { Root = share, ReserveBytes = 0 }, new FakeTimeProvider(Start));

        (await Should.ThrowAsync<PodMigrateException>(() => bare.PublishAsync(Request("ck-2", Source(temp, 1000)), null, CancellationToken.None)))
            .Kind.ShouldBe(ErrorKind.FailedPrecondition);
        var error = await Should.ThrowAsync<PodMigrateException>(() => bare.VerifyAsync(published.Id, CancellationToken.None));
        error.Kind.ShouldBe(ErrorKind.PermissionDenied);
        error.Message.ShouldContain("trusts no CA");
    }

    [Fact(Timeout = Timeout)]
    public async Task The_development_mode_publishes_and_reads_unsigned_checkpoints_but_still_refuses_bad_signatures()
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var share = temp.Combine("share");
        var development = NewStore(share, time, signatures: CheckpointSignatures.UnsignedForDevelopment(time));

        var unsigned = await development.PublishAsync(Request("ck-dev", Source(temp, 1000)), null, CancellationToken.None);

        File.Exists(Path.Combine(unsigned.Directory, CheckpointLayout.SignatureFile)).ShouldBeFalse();
        (await development.VerifyAsync(unsigned.Id, CancellationToken.None)).Signer.ShouldBeNull();
        (await Should.ThrowAsync<PodMigrateException>(() => NewStore(share, time).VerifyAsync(unsigned.Id, CancellationToken.None)))
            .Kind.ShouldBe(ErrorKind.PermissionDenied, "a secure reader refuses what the development mode wrote");
        var signed = await NewStore(share, time).PublishAsync(Request("ck-signed", Source(temp, 1000)), null, CancellationToken.None);
        (await Should.ThrowAsync<PodMigrateException>(() => development.VerifyAsync(signed.Id, CancellationToken.None)))
            .Kind.ShouldBe(ErrorKind.PermissionDenied, "it trusts no CA, so a signature cannot be checked and is refused");
    }

    public static TheoryData<string, string> HostileEntries => new()
    {
        { "symlinked-container-log", CheckpointLayout.ContainerLogFile },
        { "device-node", "checkpoint/tty" },
        { "escaping-path", "../escape" },
        { "hard-link", "checkpoint/passwd" },
    };

    /// <summary>
    /// The advisories' archives made by a signer (a compromised or buggy agent), so the manifest and its digests are
    /// valid: the archive reader itself still refuses the entry, naming it, and nothing is extracted or imported.
    /// </summary>
    [Theory(Timeout = Timeout)]
    [MemberData(nameof(HostileEntries))]
    public async Task A_signed_checkpoint_with_a_hostile_entry_and_valid_digests_is_refused_naming_the_entry(string kind, string entry)
    {
        using var temp = new TempDirectory();
        var time = new FakeTimeProvider(Start);
        var share = temp.Combine("share");
        var store = NewStore(share, time);
        var id = CheckpointId.Parse("ck-hostile");
        await PlantSignedAsync(share, id, kind, entry, time);
        (await store.GetAsync(id, CancellationToken.None)).Signer.ShouldNotBeNull("the manifest is validly signed");

        var target = temp.Combine("restore", "target");
        foreach (var read in new Func<Task>[]
        {
            () => store.VerifyAsync(id, CancellationToken.None),
            () => store.ExtractAsync(id, target, CancellationToken.None),
            () => store.WriteImageLayerAsync(id, new MemoryStream(), new CheckpointTarCopyOptions(), CancellationToken.None),
        })
        {
            var error = await Should.ThrowAsync<PodMigrateException>(read);
            error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
            error.Message.ShouldContain($"refused archive entry \"{entry}\"");
        }

        Path.Exists(target).ShouldBeFalse("what was extracted before the refusal is removed");
        Path.Exists(Path.Combine(share, "checkpoints", "escape")).ShouldBeFalse();
        Path.Exists(temp.Combine("restore", "escape")).ShouldBeFalse();
    }

    private static async Task<CheckpointId> ForgeAsync(string forgery, FileSystemCheckpointStore store, StoredCheckpoint genuine, StoredCheckpoint other, TimeProvider time)
    {
        var manifestPath = Path.Combine(genuine.Directory, CheckpointLayout.ManifestFile);
        var signaturePath = Path.Combine(genuine.Directory, CheckpointLayout.SignatureFile);
        switch (forgery)
        {
            case "unsigned":
            case "signed-by-a-forger-ca":
            {
                // Someone with write access to the share plants a checkpoint: real archive, consistent manifest, their own id.
                var forged = CheckpointId.Parse("ck-forged");
                var directory = Path.Combine(store.CheckpointsDirectory, forged.Value);
                Directory.CreateDirectory(directory);
                File.Copy(genuine.ArchivePath, Path.Combine(directory, Path.GetFileName(genuine.ArchivePath)));
                var manifest = ArchiveJson.SerializeManifest(genuine.Manifest with { CheckpointId = forged.Value, Pinned = false });
                await File.WriteAllBytesAsync(Path.Combine(directory, CheckpointLayout.ManifestFile), manifest);
                if (forgery == "signed-by-a-forger-ca")
                {
                    using var forger = SigningKit.NewCa("Forger CA");
                    await File.WriteAllBytesAsync(Path.Combine(directory, CheckpointLayout.SignatureFile), SigningKit.Agent("node-a", time, forger).Sign(manifest)!);
                }
                return forged;
            }
            case "altered-manifest":
            {
                // The genuine checkpoint, its manifest edited to restore into another image.
                var manifest = JsonNode.Parse(await File.ReadAllBytesAsync(manifestPath))!.AsObject();
                manifest["imageReference"] = "evil.example/backdoor:1";
                await File.WriteAllTextAsync(manifestPath, manifest.ToJsonString());
                return genuine.Id;
            }
            case "signature-of-another-checkpoint":
                File.Copy(Path.Combine(other.Directory, CheckpointLayout.SignatureFile), signaturePath, overwrite: true);
                return genuine.Id;
            case "renamed":
            {
                // A genuine, signed checkpoint copied under the name another migration asked for.
                var renamed = CheckpointId.Parse("ck-renamed");
                var directory = Path.Combine(store.CheckpointsDirectory, renamed.Value);
                Directory.CreateDirectory(directory);
                foreach (var file in Directory.GetFiles(genuine.Directory))
                {
                    File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
                }
                return renamed;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(forgery), forgery, null);
        }
    }

    /// <summary>A hand-made checkpoint (codec none) holding one hostile entry, its manifest with correct digests, signed like an agent's.</summary>
    private static async Task PlantSignedAsync(string share, CheckpointId id, string kind, string entry, TimeProvider time)
    {
        var files = new List<ManifestEntry>
        {
            new() { Path = CheckpointLayout.CheckpointDirectory, Type = ManifestEntryType.Directory, Mode = 448 },
        };
        var blob = new MemoryStream();
        await using (var tar = new TarWriter(blob, TarEntryFormat.Pax, leaveOpen: true))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, CheckpointLayout.CheckpointDirectory + "/"));
            var config = "{}"u8.ToArray();
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, CheckpointLayout.ConfigDumpFile) { DataStream = new MemoryStream(config) });
            files.Add(new ManifestEntry { Path = CheckpointLayout.ConfigDumpFile, Type = ManifestEntryType.File, Mode = 384, Size = config.Length, Sha256 = Convert.ToHexStringLower(SHA256.HashData(config)) });
            switch (kind)
            {
                case "symlinked-container-log":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.SymbolicLink, entry) { LinkName = "/var/lib/kubelet/pki/kubelet.key" });
                    files.Add(new ManifestEntry { Path = entry, Type = ManifestEntryType.Symlink, Mode = 511, LinkTarget = "/var/lib/kubelet/pki/kubelet.key" });
                    break;
                case "device-node":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.CharacterDevice, entry) { DeviceMajor = 5, DeviceMinor = 0 });
                    files.Add(new ManifestEntry { Path = entry, Type = ManifestEntryType.File, Mode = 384 });
                    break;
                case "hard-link":
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.HardLink, entry) { LinkName = "/etc/passwd" });
                    files.Add(new ManifestEntry { Path = entry, Type = ManifestEntryType.File, Mode = 384 });
                    break;
                case "escaping-path":
                    var data = "pwned"u8.ToArray();
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, entry) { DataStream = new MemoryStream(data) });
                    files.Add(new ManifestEntry { Path = entry, Type = ManifestEntryType.File, Mode = 384, Size = data.Length, Sha256 = Convert.ToHexStringLower(SHA256.HashData(data)) });
                    break;
            }
        }

        var bytes = blob.ToArray();
        var manifest = ArchiveJson.SerializeManifest(new CheckpointManifest
        {
            CheckpointId = id.Value,
            CreatedAt = time.GetUtcNow(),
            SourceNode = "node-a",
            Codec = new CodecSettings(CheckpointCodecs.NoneName, 0),
            RawSize = bytes.Length,
            CompressedSize = bytes.Length,
            ArchiveSha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)),
            Files = files,
        });
        var directory = Path.Combine(share, "checkpoints", id.Value);
        Directory.CreateDirectory(directory);
        await File.WriteAllBytesAsync(Path.Combine(directory, "archive.tar"), bytes);
        await File.WriteAllBytesAsync(Path.Combine(directory, CheckpointLayout.ManifestFile), manifest);
        await File.WriteAllBytesAsync(Path.Combine(directory, CheckpointLayout.SignatureFile), SigningKit.Agent("node-a", time).Sign(manifest)!);
    }
}
