using System.Formats.Tar;
using System.IO.Compression;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Text.Json;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;

namespace PodMigrate.Core.Tests.Images;

[Trait("Category", "Unit")]
[SupportedOSPlatform("linux")]
public sealed class OciImageBuilderTests : IDisposable
{
    private static readonly UnixFileMode Mode0755 = (UnixFileMode)0b111_101_101;
    private static readonly UnixFileMode Mode0640 = (UnixFileMode)0b110_100_000;
    private static readonly UnixFileMode Mode1777 = (UnixFileMode)0b1_111_111_111;

    private readonly string _dir = Directory.CreateTempSubdirectory("pm-oci-").FullName;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

    public void Dispose()
    {
        _timeout.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact(Timeout = 30_000)]
    public async Task Same_inputs_give_the_same_digests_even_when_host_mtimes_differ()
    {
        var spec = Spec();
        var first = await BuildAsync(spec, "a");
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "app"), DateTime.UtcNow.AddDays(-3));
        var second = await BuildAsync(spec, "b");

        second.ManifestDigest.ShouldBe(first.ManifestDigest);
        second.Config.Digest.ShouldBe(first.Config.Digest);
        second.Layers.Single().Descriptor.Digest.ShouldBe(first.Layers.Single().Descriptor.Digest);
    }

    [Fact(Timeout = 30_000)]
    public async Task Layer_bytes_carry_nothing_of_the_building_process_and_long_names_survive()
    {
        var longName = string.Join('/', Enumerable.Repeat("a-rather-long-directory-name", 6)) + "/file";
        var spec = Spec() with { Layers = [[LayerEntry.File(longName, SourceFile("long", "x"), Mode0640), LayerEntry.Symlink("link", "/" + longName)]] };
        var image = await BuildAsync(spec, "a");
        var layout = OciLayout.Open(image.LayoutDirectory);

        await using (var gunzip = new GZipStream(layout.OpenBlob(image.Layers[0].Descriptor.ParsedDigest), CompressionMode.Decompress))
        using (var raw = new MemoryStream())
        {
            await gunzip.CopyToAsync(raw, _timeout.Token);
            // .NET's PAX writer names extended headers after the process id, which would change the digest per run.
            System.Text.Encoding.ASCII.GetString(raw.ToArray()).ShouldNotContain("PaxHeaders");
        }

        var entries = await ReadLayerAsync(image, 0);
        entries.Single(e => e.EntryType == TarEntryType.RegularFile).Name.ShouldBe(longName);
        entries.Single(e => e.EntryType == TarEntryType.SymbolicLink).LinkName.ShouldBe("/" + longName);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_different_mode_gives_a_different_layer_digest()
    {
        var first = await BuildAsync(Spec(), "a");
        var changed = Spec() with { Layers = [[LayerEntry.File("app", SourceFile("app", "#!app"), Mode0640)]] };
        var second = await BuildAsync(changed, "b");

        second.Layers.Single().Descriptor.Digest.ShouldNotBe(first.Layers.Single().Descriptor.Digest);
        second.ManifestDigest.ShouldNotBe(first.ManifestDigest);
    }

    [Fact(Timeout = 30_000)]
    public async Task Layer_holds_sorted_entries_with_modes_root_owner_fixed_mtime_symlinks_and_implied_parents()
    {
        var image = await BuildAsync(Spec(), "a");
        var entries = await ReadLayerAsync(image, 0);

        entries.Select(e => e.Name).ShouldBe(["app", "bin/", "bin/busybox", "bin/sh", "etc/", "etc/conf/", "etc/conf/app.conf", "tmp/"]);
        entries.ShouldAllBe(e => e.Uid == 0 && e.Gid == 0 && e.ModificationTime == DateTimeOffset.UnixEpoch);
        entries.ShouldAllBe(e => e.UserName == string.Empty && e.GroupName == string.Empty);

        var app = entries.Single(e => e.Name == "app");
        app.EntryType.ShouldBe(TarEntryType.RegularFile);
        app.Mode.ShouldBe(Mode0755);
        app.Content.ShouldBe("#!app");

        var conf = entries.Single(e => e.Name == "etc/conf/app.conf");
        conf.Mode.ShouldBe(Mode0640);
        conf.Content.ShouldBe("key=value\n");

        var sh = entries.Single(e => e.Name == "bin/sh");
        sh.EntryType.ShouldBe(TarEntryType.SymbolicLink);
        sh.LinkName.ShouldBe("busybox");

        entries.Single(e => e.Name == "tmp/").Mode.ShouldBe(Mode1777);
        var implied = entries.Single(e => e.Name == "etc/conf/");
        implied.EntryType.ShouldBe(TarEntryType.Directory);
        implied.Mode.ShouldBe(Mode0755);
    }

    [Fact(Timeout = 30_000)]
    public async Task Config_diff_ids_are_the_uncompressed_layers_and_descriptors_match_the_blobs()
    {
        var spec = Spec() with { Layers = [Spec().Layers[0], [LayerEntry.File("extra/data", SourceFile("data", "second layer"), Mode0640)]] };
        var image = await BuildAsync(spec, "a");
        var layout = OciLayout.Open(image.LayoutDirectory);

        using var config = JsonDocument.Parse(await File.ReadAllBytesAsync(layout.BlobPath(image.Config.ParsedDigest), _timeout.Token));
        var diffIds = config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray().Select(e => e.GetString()).ToList();
        diffIds.Count.ShouldBe(2);
        for (var i = 0; i < 2; i++)
        {
            var layer = image.Layers[i].Descriptor;
            var blob = await File.ReadAllBytesAsync(layout.BlobPath(layer.ParsedDigest), _timeout.Token);
            layer.Size.ShouldBe(blob.Length);
            OciDigest.Compute(blob).ToString().ShouldBe(layer.Digest);

            using var gunzip = new GZipStream(new MemoryStream(blob), CompressionMode.Decompress);
            diffIds[i].ShouldBe("sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(gunzip, _timeout.Token)));
            image.Layers[i].DiffId.ToString().ShouldBe(diffIds[i]);
        }

        var manifestBytes = await File.ReadAllBytesAsync(layout.BlobPath(image.ManifestDigest), _timeout.Token);
        OciDigest.Compute(manifestBytes).ShouldBe(image.ManifestDigest);
        image.Manifest.Size.ShouldBe(manifestBytes.Length);
    }

    [Fact(Timeout = 30_000)]
    public async Task Manifest_config_index_and_layout_files_have_the_oci_shape()
    {
        var image = await BuildAsync(Spec(), "a");
        var layout = OciLayout.Open(image.LayoutDirectory);

        using var manifest = JsonDocument.Parse(await File.ReadAllBytesAsync(layout.BlobPath(image.ManifestDigest), _timeout.Token));
        var m = manifest.RootElement;
        m.GetProperty("schemaVersion").GetInt32().ShouldBe(2);
        m.GetProperty("mediaType").GetString().ShouldBe("application/vnd.oci.image.manifest.v1+json");
        m.GetProperty("config").GetProperty("mediaType").GetString().ShouldBe("application/vnd.oci.image.config.v1+json");
        m.GetProperty("config").GetProperty("digest").GetString().ShouldBe(image.Config.Digest);
        m.GetProperty("layers")[0].GetProperty("mediaType").GetString().ShouldBe("application/vnd.oci.image.layer.v1.tar+gzip");
        m.GetProperty("annotations").GetProperty("org.criu.checkpoint.container.name").GetString().ShouldBe("app");
        m.GetProperty("annotations").EnumerateObject().Select(p => p.Name).ShouldBe(["io.kubernetes.cri-o.annotations.checkpoint.name", "org.criu.checkpoint.container.name"]);

        using var config = JsonDocument.Parse(await File.ReadAllBytesAsync(layout.BlobPath(image.Config.ParsedDigest), _timeout.Token));
        var c = config.RootElement;
        c.GetProperty("architecture").GetString().ShouldBe("amd64");
        c.GetProperty("os").GetString().ShouldBe("linux");
        c.GetProperty("config").GetProperty("Entrypoint")[0].GetString().ShouldBe("/app");
        c.GetProperty("config").GetProperty("Cmd")[0].GetString().ShouldBe("--serve");
        c.GetProperty("config").GetProperty("Env")[0].GetString().ShouldBe("PATH=/bin");
        c.GetProperty("config").GetProperty("WorkingDir").GetString().ShouldBe("/");
        c.GetProperty("rootfs").GetProperty("type").GetString().ShouldBe("layers");

        using var index = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(layout.Root, "index.json"), _timeout.Token));
        var entry = index.RootElement.GetProperty("manifests").EnumerateArray().Single();
        entry.GetProperty("digest").GetString().ShouldBe(image.ManifestDigest.ToString());
        entry.GetProperty("mediaType").GetString().ShouldBe(OciMediaTypes.ImageManifest);
        entry.GetProperty("annotations").GetProperty("io.containerd.image.name").GetString().ShouldBe("localhost:5000/test/app:1");
        entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString().ShouldBe("1");

        using var marker = JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(layout.Root, "oci-layout"), _timeout.Token));
        marker.RootElement.GetProperty("imageLayoutVersion").GetString().ShouldBe("1.0.0");
        Directory.GetFiles(Path.Combine(layout.Root, "blobs", "sha256")).ShouldAllBe(f => !Path.GetFileName(f).StartsWith('.'));
    }

    [Fact(Timeout = 30_000)]
    public async Task A_layout_holds_several_images_by_name_and_rebuilding_one_replaces_it()
    {
        var layout = await OciLayout.CreateAsync(Path.Combine(_dir, "shared"), _timeout.Token);
        var app = await OciImageBuilder.BuildAsync(Spec(), layout, _timeout.Token);
        var otherName = ImageReference.Parse("localhost:5000/test/other:2");
        var other = await OciImageBuilder.BuildAsync(Spec() with { Name = otherName, Cmd = ["--other"] }, layout, _timeout.Token);
        await OciImageBuilder.BuildAsync(Spec(), layout, _timeout.Token);

        (await layout.ReadIndexAsync(_timeout.Token)).Manifests.Count.ShouldBe(2);
        (await layout.FindImageAsync(Spec().Name, _timeout.Token)).Descriptor.Digest.ShouldBe(app.Manifest.Digest);
        (await layout.FindImageAsync(otherName, _timeout.Token)).Descriptor.Digest.ShouldBe(other.Manifest.Digest);
        (await Should.ThrowAsync<PodMigrateException>(() => layout.FindImageAsync(null, _timeout.Token))).Kind.ShouldBe(ErrorKind.FailedPrecondition);
        (await Should.ThrowAsync<PodMigrateException>(() => layout.FindImageAsync(ImageReference.Parse("localhost:5000/nope:1"), _timeout.Token))).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact(Timeout = 30_000)]
    public async Task FromDirectory_packs_a_host_tree_with_modes_and_links()
    {
        var tree = Directory.CreateDirectory(Path.Combine(_dir, "tree")).FullName;
        Directory.CreateDirectory(Path.Combine(tree, "checkpoint"));
        await File.WriteAllTextAsync(Path.Combine(tree, "checkpoint", "pages-1.img"), "pages", _timeout.Token);
        File.SetUnixFileMode(Path.Combine(tree, "checkpoint", "pages-1.img"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(Path.Combine(tree, "config.dump"), "{}", _timeout.Token);
        File.CreateSymbolicLink(Path.Combine(tree, "link"), "config.dump");

        var spec = Spec() with { Layers = [LayerEntry.FromDirectory(tree, "/")] };
        var entries = await ReadLayerAsync(await BuildAsync(spec, "a"), 0);

        entries.Select(e => e.Name).ShouldBe(["checkpoint/", "checkpoint/pages-1.img", "config.dump", "link"]);
        entries[1].Mode.ShouldBe(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        entries[1].Content.ShouldBe("pages");
        entries[3].LinkName.ShouldBe("config.dump");
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("a/../../b")]
    [InlineData("a/./b")]
    [InlineData("a//b")]
    [InlineData("/")]
    [InlineData("")]
    public void Paths_that_could_escape_or_are_ambiguous_are_rejected(string path)
        => Should.Throw<PodMigrateException>(() => LayerEntry.Directory(path)).Kind.ShouldBe(ErrorKind.InvalidArgument);

    [Fact(Timeout = 30_000)]
    public async Task Two_different_entries_for_one_path_or_a_file_used_as_a_parent_are_rejected()
    {
        var file = SourceFile("x", "x");
        var duplicate = Spec() with { Layers = [[LayerEntry.File("a", file, Mode0755), LayerEntry.Symlink("a", "b")]] };
        (await Should.ThrowAsync<PodMigrateException>(() => BuildAsync(duplicate, "a"))).Kind.ShouldBe(ErrorKind.InvalidArgument);

        var fileAsParent = Spec() with { Layers = [[LayerEntry.File("a", file, Mode0755), LayerEntry.File("a/b", file, Mode0755)]] };
        (await Should.ThrowAsync<PodMigrateException>(() => BuildAsync(fileAsParent, "b"))).Kind.ShouldBe(ErrorKind.InvalidArgument);
    }

    [Fact(Timeout = 30_000)]
    public async Task A_missing_source_file_is_NotFound_and_leaves_no_temporary_blob()
    {
        var spec = Spec() with { Layers = [[LayerEntry.File("app", Path.Combine(_dir, "missing"), Mode0755)]] };
        (await Should.ThrowAsync<PodMigrateException>(() => BuildAsync(spec, "a"))).Kind.ShouldBe(ErrorKind.NotFound);
        Directory.GetFiles(Path.Combine(_dir, "a", "blobs", "sha256")).ShouldBeEmpty();
    }

    private OciImageSpec Spec() => new()
    {
        Name = ImageReference.Parse("localhost:5000/test/app:1"),
        Layers =
        [[
            LayerEntry.File("/app", SourceFile("app", "#!app"), Mode0755),
            LayerEntry.Symlink("bin/sh", "busybox"),
            LayerEntry.File("bin/busybox", SourceFile("busybox", "bb"), Mode0755),
            LayerEntry.Directory("tmp", Mode1777),
            LayerEntry.File("etc/conf/app.conf", SourceFile("conf", "key=value\n"), Mode0640),
        ]],
        Entrypoint = ["/app"],
        Cmd = ["--serve"],
        Env = ["PATH=/bin"],
        WorkingDir = "/",
        ManifestAnnotations = new Dictionary<string, string>
        {
            ["org.criu.checkpoint.container.name"] = "app",
            ["io.kubernetes.cri-o.annotations.checkpoint.name"] = "app",
        },
    };

    private string SourceFile(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    private async Task<BuiltImage> BuildAsync(OciImageSpec spec, string layoutName)
        => await OciImageBuilder.BuildAsync(spec, await OciLayout.CreateAsync(Path.Combine(_dir, layoutName), _timeout.Token), _timeout.Token);

    private async Task<List<LayerEntryView>> ReadLayerAsync(BuiltImage image, int layer)
    {
        var layout = OciLayout.Open(image.LayoutDirectory);
        await using var blob = layout.OpenBlob(image.Layers[layer].Descriptor.ParsedDigest);
        await using var gunzip = new GZipStream(blob, CompressionMode.Decompress);
        await using var reader = new TarReader(gunzip);
        var entries = new List<LayerEntryView>();
        while (await reader.GetNextEntryAsync(copyData: false, _timeout.Token) is { } entry)
        {
            string? content = null;
            if (entry.DataStream is { } data)
            {
                using var text = new StreamReader(data);
                content = await text.ReadToEndAsync(_timeout.Token);
            }

            var posix = (PosixTarEntry)entry;
            entries.Add(new LayerEntryView(entry.Name, entry.EntryType, entry.Mode, entry.Uid, entry.Gid, posix.UserName, posix.GroupName, entry.ModificationTime, entry.LinkName, content));
        }

        return entries;
    }

    private sealed record LayerEntryView(
        string Name, TarEntryType EntryType, UnixFileMode Mode, int Uid, int Gid, string UserName, string GroupName, DateTimeOffset ModificationTime, string LinkName, string? Content);
}
