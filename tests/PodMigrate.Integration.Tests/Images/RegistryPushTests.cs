using System.IO.Compression;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;
using PodMigrate.TestKit.Registry;

namespace PodMigrate.Integration.Tests.Images;

/// <summary>Push and read back against a real registry (Debian's docker-registry, distribution 2.8) started per test.</summary>
[Trait("Category", "Integration")]
[Trait("Requires", "DockerRegistry")]
[SupportedOSPlatform("linux")]
public sealed class RegistryPushTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pm-push-").FullName;
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(90));
    private LocalRegistry _registry = null!;

    public async Task InitializeAsync() => _registry = await LocalRegistry.StartAsync(_timeout.Token);

    public async Task DisposeAsync()
    {
        await _registry.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    public void Dispose() => _timeout.Dispose();

    [Fact(Timeout = 90_000)]
    public async Task Pushed_image_reads_back_with_the_same_digests_and_content()
    {
        var (layout, image) = await BuildAsync("podmigrate/app", "payload-1");

        var push = await _registry.Client.PushAsync(layout, image.Name, null, _timeout.Token);

        push.ManifestDigest.ShouldBe(image.ManifestDigest);
        push.BlobsUploaded.ShouldBe(3);
        var byTag = await _registry.Client.GetManifestAsync(image.Name, _timeout.Token);
        byTag.Digest.ShouldBe(image.ManifestDigest);
        byTag.MediaType.ShouldBe(OciMediaTypes.ImageManifest);
        byTag.Content.ToArray().ShouldBe(await File.ReadAllBytesAsync(layout.BlobPath(image.ManifestDigest), _timeout.Token));
        var manifest = byTag.ParseImageManifest();
        manifest.Config.Digest.ShouldBe(image.Config.Digest);
        manifest.Layers.Select(l => l.Digest).ShouldBe(image.Layers.Select(l => l.Descriptor.Digest));
        manifest.Annotations!["org.criu.checkpoint.container.name"].ShouldBe("app");

        var byDigest = await _registry.Client.GetManifestAsync(push.Pinned, _timeout.Token);
        byDigest.Digest.ShouldBe(image.ManifestDigest);

        // The layer as served decompresses to the diff_id the config names.
        await using var blob = await _registry.Client.OpenBlobAsync(image.Name, image.Layers[1].Descriptor.ParsedDigest, _timeout.Token);
        await using var gunzip = new GZipStream(blob, CompressionMode.Decompress);
        OciDigest.FromHash(await SHA256.HashDataAsync(gunzip, _timeout.Token)).ShouldBe(image.Layers[1].DiffId);
    }

    [Fact(Timeout = 90_000)]
    public async Task Pushing_twice_uploads_nothing_new_and_keeps_the_digest()
    {
        var (layout, image) = await BuildAsync("podmigrate/app", "payload-1");
        var first = await _registry.Client.PushAsync(layout, image.Name, image.Name, _timeout.Token);

        var second = await _registry.Client.PushAsync(layout, image.Name, image.Name, _timeout.Token);

        second.ManifestDigest.ShouldBe(first.ManifestDigest);
        second.BlobsUploaded.ShouldBe(0);
        second.BlobsSkipped.ShouldBe(3);
        (await _registry.Client.GetManifestAsync(image.Name, _timeout.Token)).Digest.ShouldBe(first.ManifestDigest);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_new_build_under_the_same_tag_moves_the_tag_and_shares_unchanged_layers()
    {
        var (layout, first) = await BuildAsync("podmigrate/app", "payload-1");
        await _registry.Client.PushAsync(layout, first.Name, first.Name, _timeout.Token);
        var (layout2, second) = await BuildAsync("podmigrate/app", "payload-2", "second");

        var push = await _registry.Client.PushAsync(layout2, second.Name, second.Name, _timeout.Token);

        second.ManifestDigest.ShouldNotBe(first.ManifestDigest);
        push.BlobsSkipped.ShouldBe(1, "the unchanged base layer is already there");
        push.BlobsUploaded.ShouldBe(2);
        (await _registry.Client.GetManifestAsync(first.Name, _timeout.Token)).Digest.ShouldBe(second.ManifestDigest);
        (await _registry.Client.GetManifestAsync(first.Name.PinnedTo(first.ManifestDigest), _timeout.Token)).Digest.ShouldBe(first.ManifestDigest);
    }

    [Fact(Timeout = 90_000)]
    public async Task Unknown_tags_repositories_and_blobs_are_NotFound()
    {
        var (layout, image) = await BuildAsync("podmigrate/app", "payload-1");
        await _registry.Client.PushAsync(layout, image.Name, image.Name, _timeout.Token);

        (await Should.ThrowAsync<PodMigrateException>(() => _registry.Client.GetManifestAsync(image.Name.WithTag("nope"), _timeout.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        (await Should.ThrowAsync<PodMigrateException>(() => _registry.Client.GetManifestAsync(_registry.Reference("podmigrate/absent"), _timeout.Token))).Kind.ShouldBe(ErrorKind.NotFound);
        var missing = OciDigest.Compute("not stored"u8);
        (await _registry.Client.BlobExistsAsync(image.Name, missing, _timeout.Token)).ShouldBeFalse();
        (await Should.ThrowAsync<PodMigrateException>(() => _registry.Client.OpenBlobAsync(image.Name, missing, _timeout.Token))).Kind.ShouldBe(ErrorKind.NotFound);
    }

    [Fact(Timeout = 90_000)]
    public async Task A_registry_that_went_away_is_Unavailable_and_its_process_is_gone()
    {
        var (layout, image) = await BuildAsync("podmigrate/app", "payload-1");
        string host;
        int pid;
        await using (var stopped = await LocalRegistry.StartAsync(_timeout.Token))
        {
            (host, pid) = (stopped.Host, stopped.ProcessId);
        }

        Directory.Exists($"/proc/{pid}").ShouldBeFalse($"docker-registry (pid {pid}) still runs after the fixture was disposed");
        var error = await Should.ThrowAsync<PodMigrateException>(() => _registry.Client.PushAsync(layout, ImageReference.Parse($"{host}/podmigrate/app:1"), image.Name, _timeout.Token));

        error.Kind.ShouldBe(ErrorKind.Unavailable);
        error.Message.ShouldContain(host);
    }

    /// <summary>A two-layer image: a fixed base layer and one whose content is <paramref name="payload"/>.</summary>
    private async Task<(OciLayout Layout, BuiltImage Image)> BuildAsync(string repository, string payload, string layoutName = "layout")
    {
        var source = Path.Combine(_dir, $"{layoutName}-payload");
        await File.WriteAllTextAsync(source, payload, _timeout.Token);
        var baseFile = Path.Combine(_dir, "base");
        await File.WriteAllTextAsync(baseFile, "base layer", _timeout.Token);
        var layout = await OciLayout.CreateAsync(Path.Combine(_dir, layoutName), _timeout.Token);
        var image = await OciImageBuilder.BuildAsync(
            new OciImageSpec
            {
                Name = _registry.Reference(repository),
                Layers = [[LayerEntry.File("etc/base", baseFile, (UnixFileMode)0b110_100_100)], [LayerEntry.File("payload", source, (UnixFileMode)0b110_100_100)]],
                Entrypoint = ["/payload"],
                ManifestAnnotations = new Dictionary<string, string> { ["org.criu.checkpoint.container.name"] = "app" },
            },
            layout,
            _timeout.Token);
        return (layout, image);
    }
}
