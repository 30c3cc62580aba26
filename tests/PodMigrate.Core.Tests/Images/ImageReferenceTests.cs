using PodMigrate.Core.Errors;
using PodMigrate.Core.Images;

namespace PodMigrate.Core.Tests.Images;

[Trait("Category", "Unit")]
public sealed class ImageReferenceTests
{
    private const string Digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("localhost:5000/podmigrate/counter:1", "localhost:5000", "podmigrate/counter", "1", null)]
    [InlineData("localhost:5000/podmigrate/counter", "localhost:5000", "podmigrate/counter", "latest", null)]
    [InlineData("127.0.0.1:41234/a/b/c:v1.2", "127.0.0.1:41234", "a/b/c", "v1.2", null)]
    [InlineData("localhost/pause:3", "localhost", "pause", "3", null)]
    [InlineData("pause", "docker.io", "library/pause", "latest", null)]
    [InlineData("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", null)]
    [InlineData("localhost:5000/podmigrate/counter@" + Digest, "localhost:5000", "podmigrate/counter", null, Digest)]
    [InlineData("localhost:5000/podmigrate/counter:1@" + Digest, "localhost:5000", "podmigrate/counter", "1", Digest)]
    public void Parses_and_qualifies_like_CRI(string value, string registry, string repository, string? tag, string? digest)
    {
        var reference = ImageReference.Parse(value);

        reference.Registry.ShouldBe(registry);
        reference.Repository.ShouldBe(repository);
        reference.Tag.ShouldBe(tag);
        reference.Digest?.ToString().ShouldBe(digest);
        ImageReference.Parse(reference.ToString()).ShouldBe(reference);
    }

    [Fact]
    public void Pinned_reference_uses_the_digest_for_the_manifest_url()
    {
        var pinned = ImageReference.Parse("localhost:5000/podmigrate/counter:1").PinnedTo(OciDigest.Parse(Digest));

        pinned.ToString().ShouldBe("localhost:5000/podmigrate/counter@" + Digest);
        pinned.ManifestReference.ShouldBe(Digest);
    }

    [Theory]
    [InlineData("localhost:5000/Upper/case:1")]
    [InlineData("localhost:5000/podmigrate/counter:bad tag")]
    [InlineData("localhost:5000/podmigrate/counter@sha256:short")]
    [InlineData("localhost:5000/podmigrate/counter@md5:0123")]
    [InlineData("localhost:5000/")]
    public void Malformed_references_are_InvalidArgument(string value)
        => Should.Throw<PodMigrateException>(() => ImageReference.Parse(value)).Kind.ShouldBe(ErrorKind.InvalidArgument);

    [Theory]
    [InlineData("localhost:5000", "http://localhost:5000/")]
    [InlineData("127.0.0.1:41234", "http://127.0.0.1:41234/")]
    [InlineData("[::1]:5000", "http://[::1]:5000/")]
    [InlineData("registry.example:5000", "https://registry.example:5000/")]
    public void Loopback_registries_are_plain_http(string registry, string endpoint)
        => RegistryClient.EndpointFor(registry).ShouldBe(new Uri(endpoint));
}
