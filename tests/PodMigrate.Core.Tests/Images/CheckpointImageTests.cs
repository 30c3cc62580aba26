using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Codecs;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.Core.Tests.Archive;

namespace PodMigrate.Core.Tests.Images;

/// <summary>
/// The checkpoint image's layout as containerd and CRI-O read it: the layer (the archive's files at its root, only
/// regular files and directories, config.dump rewritten), the config and the manifest (digests and sizes that agree,
/// both runtimes' annotations), and a reference CRI and a kubelet take as it is.
/// </summary>
[Trait("Category", "Unit")]
public sealed partial class CheckpointImageTests
{
    private const int Timeout = 60_000;
    private const string PinnedBase = "localhost:5000/podmigrate/counter@sha256:f21001f4cb464ccf4391219389d3a8787889b8d83f7d9f7be30ed60787da4028";

    [Fact(Timeout = Timeout)]
    public async Task The_layer_holds_the_archive_at_its_root_as_files_and_directories_with_config_dump_rewritten()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 2_500_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var layerPath = temp.Combine("layer.tar");

        var layer = await WriteLayerAsync(blob, manifest, layerPath);

        var bytes = await File.ReadAllBytesAsync(layerPath);
        layer.Descriptor.MediaType.ShouldBe("application/vnd.oci.image.layer.v1.tar");
        layer.Descriptor.Size.ShouldBe(bytes.Length);
        layer.Descriptor.Digest.ShouldBe("sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
        layer.Skipped.ShouldBeEmpty("archives hold no links");

        var entries = await ReadLayerAsync(layerPath);
        entries.Values.Select(e => e.Type).Distinct().Order().ShouldBe([TarEntryType.RegularFile, TarEntryType.Directory]);
        var expected = ArchiveTestData.Snapshot(source);
        expected.Remove(CheckpointLayout.ConfigDumpFile);
        foreach (var (path, what) in expected)
        {
            entries.ShouldContainKey(path);
            (what == "dir" ? "dir" : "file:" + entries[path].Sha256).ShouldBe(what, path);
        }
        entries.Keys.ShouldNotContain(k => k.StartsWith('/') || k.StartsWith("./", StringComparison.Ordinal), "names are relative to the layer root");
        var config = ArchiveJson.DeserializeConfigDump(entries[CheckpointLayout.ConfigDumpFile].Content, "config.dump in the layer");
        config.RootfsImageRef.ShouldBe(PinnedBase);
        config.Name.ShouldBe("counter", "only rootfsImageRef changes");
        layer.Captured[CheckpointLayout.ConfigDumpFile].ShouldBe(entries[CheckpointLayout.ConfigDumpFile].Content);
    }

    [Fact(Timeout = Timeout)]
    public async Task Manifest_config_and_layer_agree_and_carry_both_runtimes_annotations()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (written, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("zstd", 1));
        var manifest = written with
        {
            Pod = new PodReference("default", "counter-7f9c"),
            Container = new ContainerReference("counter"),
            CriuVersion = "4.2.1",
            Runtime = "io.containerd.runc.v2",
        };
        var layer = await WriteLayerAsync(blob, manifest, temp.Combine("layer.tar"));
        var configDump = ArchiveJson.DeserializeConfigDump(layer.Captured[CheckpointLayout.ConfigDumpFile], "config.dump");

        var documents = CheckpointImage.Describe(layer.Descriptor, CheckpointImage.AnnotationsFor(manifest, configDump));

        Digest(documents.Config.Content).ShouldBe(documents.Config.Descriptor.Digest);
        documents.Config.Descriptor.Size.ShouldBe(documents.Config.Content.Length);
        Digest(documents.Manifest.Content).ShouldBe(documents.Manifest.Descriptor.Digest);
        documents.Manifest.Descriptor.Size.ShouldBe(documents.Manifest.Content.Length);
        documents.Manifest.Descriptor.MediaType.ShouldBe("application/vnd.oci.image.manifest.v1+json");

        using var manifestJson = JsonDocument.Parse(documents.Manifest.Content);
        var root = manifestJson.RootElement;
        root.GetProperty("schemaVersion").GetInt32().ShouldBe(2);
        root.GetProperty("mediaType").GetString().ShouldBe("application/vnd.oci.image.manifest.v1+json");
        Descriptor(root.GetProperty("config")).ShouldBe(("application/vnd.oci.image.config.v1+json", documents.Config.Descriptor.Digest, documents.Config.Content.LongLength));
        var layers = root.GetProperty("layers").EnumerateArray().ToList();
        layers.Count.ShouldBe(1);
        Descriptor(layers[0]).ShouldBe((layer.Descriptor.MediaType, layer.Descriptor.Digest, layer.Descriptor.Size));
        var annotations = root.GetProperty("annotations").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.container.name", "counter");
        annotations.ShouldContainKeyAndValue("io.kubernetes.cri-o.annotations.checkpoint.name", "counter");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.pod.name", "counter-7f9c");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.pod.namespace", "default");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.rootfsImageName", "localhost:5000/podmigrate/counter:1");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.engine.name", "containerd");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.runtime.name", "io.containerd.runc.v2");
        annotations.ShouldContainKeyAndValue("org.criu.checkpoint.criu.version", "4.2.1");
        annotations.ShouldContainKeyAndValue("podmigrate.io/checkpoint-id", "ck-test");
        annotations.ShouldContainKeyAndValue("podmigrate.io/rootfs-image-ref", PinnedBase);

        using var configJson = JsonDocument.Parse(documents.Config.Content);
        configJson.RootElement.GetProperty("os").GetString().ShouldBe("linux");
        configJson.RootElement.GetProperty("architecture").GetString().ShouldBe(CheckpointImage.GoArchitecture());
        var rootfs = configJson.RootElement.GetProperty("rootfs");
        rootfs.GetProperty("type").GetString().ShouldBe("layers");
        rootfs.GetProperty("diff_ids").EnumerateArray().Select(d => d.GetString()).ShouldBe([layer.Descriptor.Digest], "uncompressed: the layer digest is its diff id");
        documents.ChainId.ShouldBe(layer.Descriptor.Digest);
    }

    [Fact(Timeout = Timeout)]
    public async Task The_same_checkpoint_gives_the_same_image()
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"), pagesBytes: 100_000);
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings("gzip", 1));

        var first = await WriteLayerAsync(blob, manifest, temp.Combine("first.tar"));
        var second = await WriteLayerAsync(blob, manifest, temp.Combine("second.tar"));

        second.Descriptor.ShouldBe(first.Descriptor);
        var annotations = CheckpointImage.AnnotationsFor(manifest, ArchiveJson.DeserializeConfigDump(first.Captured[CheckpointLayout.ConfigDumpFile], "config.dump"));
        CheckpointImage.Describe(second.Descriptor, annotations).Manifest.Descriptor.ShouldBe(CheckpointImage.Describe(first.Descriptor, annotations).Manifest.Descriptor);
    }

    [Theory(Timeout = Timeout)]
    [InlineData("zstd")]
    [InlineData("none")]
    public async Task A_flipped_byte_is_DataLoss_before_the_layer_is_described(string codec)
    {
        using var temp = new TempDirectory();
        var source = ArchiveTestData.CreateStagedCheckpoint(temp.Combine("source"));
        var (manifest, blob) = await ArchiveRoundTripTests.WriteAsync(source, temp.Combine("archive"), new CodecSettings(codec, CheckpointCodecs.Get(codec).DefaultLevel));
        ArchiveTestData.FlipByte(blob, new FileInfo(blob).Length / 2);

        var error = await Should.ThrowAsync<PodMigrateException>(() => WriteLayerAsync(blob, manifest, temp.Combine("layer.tar")));

        error.Kind.ShouldBe(ErrorKind.DataLoss, error.Message);
        error.Message.ShouldContain("ck-test");
    }

    [Theory]
    [InlineData("default", "counter", "ck-20261122-072608-5425af32", "localhost/podmigrate/checkpoint/default-counter:ck-20261122-072608-5425af32")]
    [InlineData("pm-test", "restore-src.v2", "ck-1", "localhost/podmigrate/checkpoint/pm-test-restore-src.v2:ck-1")]
    public void The_reference_names_the_pod_and_the_checkpoint_and_needs_no_normalisation(string ns, string pod, string id, string expected)
    {
        var manifest = Manifest(id) with { Pod = new PodReference(ns, pod) };

        var reference = CheckpointImage.ReferenceFor(manifest).ToString();

        reference.ShouldBe(expected);
        ShouldBeKubeletReference(reference);
    }

    [Fact]
    public void Names_no_repository_may_hold_are_made_valid_and_long_ones_cut_but_kept_apart()
    {
        var bare = CheckpointImage.ReferenceFor(Manifest("ck-2") with { Container = new ContainerReference("My_Container..Name-") }).ToString();
        var longA = CheckpointImage.ReferenceFor(Manifest("ck-3") with { Pod = new PodReference(new string('n', 63), new string('a', 250) + "x") }).ToString();
        var longB = CheckpointImage.ReferenceFor(Manifest("ck-3") with { Pod = new PodReference(new string('n', 63), new string('a', 250) + "y") }).ToString();
        var nothing = CheckpointImage.ReferenceFor(Manifest("ck-4")).ToString();

        bare.ShouldBe("localhost/podmigrate/checkpoint/my_container.name:ck-2");
        nothing.ShouldBe("localhost/podmigrate/checkpoint/container:ck-4");
        longA[..longA.LastIndexOf(':')].Length.ShouldBeLessThanOrEqualTo(255);
        longA.ShouldNotBe(longB);
        foreach (var reference in new[] { bare, longA, longB, nothing })
        {
            ShouldBeKubeletReference(reference);
        }
    }

    /// <summary>
    /// What a kubelet (distribution/reference ParseNormalizedNamed) and containerd's CRI accept unchanged: the
    /// reference grammar, a first component that is a registry ("localhost"), a name of at most 255 characters.
    /// </summary>
    private static void ShouldBeKubeletReference(string reference)
    {
        ReferenceGrammar().IsMatch(reference).ShouldBeTrue($"{reference} matches distribution's reference grammar");
        var name = reference[..reference.LastIndexOf(':')];
        name.Length.ShouldBeLessThanOrEqualTo(255);
        name.Split('/')[0].ShouldBe("localhost", "a registry host: nothing is prefixed with docker.io/library");
        ImageReference.Parse(reference).ToString().ShouldBe(reference);
    }

    // distribution/reference's ReferenceRegexp (name: domain/path components; tag), anchored.
    [GeneratedRegex(@"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$")]
    private static partial Regex ReferenceGrammar();

    private static CheckpointManifest Manifest(string id) => new()
    {
        CheckpointId = id,
        Codec = new CodecSettings("zstd", 1),
        ArchiveSha256 = new string('0', 64),
    };

    private static async Task<CheckpointLayer> WriteLayerAsync(string blob, CheckpointManifest manifest, string layerPath)
    {
        var options = new CheckpointTarCopyOptions
        {
            Captured = new HashSet<string>(StringComparer.Ordinal) { CheckpointLayout.ConfigDumpFile },
            Rewrite = (_, content, _) => ValueTask.FromResult(ArchiveJson.SerializeConfigDump(
                ArchiveJson.DeserializeConfigDump(content, "config.dump") with { RootfsImageRef = PinnedBase })),
        };
        await using var input = File.OpenRead(blob);
        await using var output = File.Create(layerPath);
        return await CheckpointImage.WriteLayerAsync(input, manifest, output, options, CancellationToken.None);
    }

    private static async Task<Dictionary<string, (TarEntryType Type, string Sha256, byte[] Content)>> ReadLayerAsync(string path)
    {
        var entries = new Dictionary<string, (TarEntryType, string, byte[])>(StringComparer.Ordinal);
        await using var reader = new TarReader(File.OpenRead(path));
        while (await reader.GetNextEntryAsync(copyData: true) is { } entry)
        {
            var content = Array.Empty<byte>();
            if (entry.DataStream is { } data)
            {
                using var buffer = new MemoryStream();
                await data.CopyToAsync(buffer);
                content = buffer.ToArray();
            }
            entries[entry.Name.TrimEnd('/')] = (entry.EntryType, Convert.ToHexStringLower(SHA256.HashData(content)), content);
        }
        return entries;
    }

    private static string Digest(byte[] content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    private static (string?, string?, long) Descriptor(JsonElement descriptor)
        => (descriptor.GetProperty("mediaType").GetString(), descriptor.GetProperty("digest").GetString(), descriptor.GetProperty("size").GetInt64());
}
