using k8s.Models;
using PodMigrate.Agent.V1;
using PodMigrate.Controller.Migrations;
using PodMigrate.Controller.Migrations.Phases;
using PodMigrate.Core.Errors;
using PodMigrate.Kube.Models;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Controller.Tests.Migrations;

public sealed class MigrationSpecTests
{
    [Theory]
    [InlineData("10s", 10_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("250ms", 250)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("0", 0)]
    public void KubeDuration_parses_go_durations(string text, double milliseconds)
        => KubeDuration.Parse(text, "f").TotalMilliseconds.ShouldBe(milliseconds);

    [Theory]
    [InlineData("10")]
    [InlineData("ten seconds")]
    [InlineData("5d")]
    [InlineData("")]
    public void KubeDuration_refuses_what_go_refuses(string text)
        => Should.Throw<PodMigrateException>(() => KubeDuration.Parse(text, "spec.verifyWindow")).Message.ShouldContain("spec.verifyWindow");

    [Theory]
    [InlineData(450, "450ms")]
    [InlineData(1234, "1.234s")]
    [InlineData(123_500, "2m3.5s")]
    [InlineData(3_600_000, "1h0m0s")]
    public void KubeDuration_formats_like_go(int milliseconds, string expected)
        => KubeDuration.Format(TimeSpan.FromMilliseconds(milliseconds)).ShouldBe(expected);

    [Fact]
    public void Settings_default_to_a_zstd_migration_with_a_10s_window_and_10m_deadline()
    {
        var settings = MigrationSettings.From(new PodMigrationSpec { PodName = "counter" });
        settings.IsClone.ShouldBeFalse();
        settings.Codec.ShouldBe(Codec.Zstd);
        settings.VerifyWindow.ShouldBe(TimeSpan.FromSeconds(10));
        settings.Deadline.ShouldBe(TimeSpan.FromMinutes(10));
        settings.RetainCheckpoint.ShouldBeFalse();
    }

    [Theory]
    [InlineData("Move", "spec.mode")]
    [InlineData(null, "spec.codec", "lz4")]
    [InlineData(null, "spec.deadline", null, "5s")]
    public void Bad_specs_name_the_field(string? mode, string field, string? codec = null, string? deadline = null)
    {
        var spec = new PodMigrationSpec { PodName = "counter", Mode = mode, Codec = codec, Deadline = deadline };
        var error = Should.Throw<PodMigrateException>(() => MigrationSettings.From(spec));
        error.Kind.ShouldBe(ErrorKind.InvalidArgument);
        error.Message.ShouldContain(field);
    }

    [Fact]
    public void Checkpoint_ids_follow_the_store_rules_and_differ_per_migration()
    {
        var a = PrecheckPhase.NewCheckpointId(Migration("m1", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"), "My.Pod_With.Dots");
        var b = PrecheckPhase.NewCheckpointId(Migration("m2", "ffffffff-4e5f-6789-abcd-ef0123456789"), "My.Pod_With.Dots");
        a.ShouldBe("my-pod-with-dots-0a1b2c3d4e5f");
        b.ShouldNotBe(a);
        PodMigrate.Core.Store.CheckpointId.TryParse(a, out _).ShouldBeTrue();
        var long_ = PrecheckPhase.NewCheckpointId(Migration("m3", "0a1b2c3d-4e5f"), new string('x', 200));
        long_.Length.ShouldBeLessThanOrEqualTo(63);
        PodMigrate.Core.Store.CheckpointId.TryParse(long_, out _).ShouldBeTrue();
    }

    [Theory]
    [InlineData("8Gi", 8L << 30)]
    [InlineData("1024Ki", 1L << 20)]
    [InlineData("512M", 512_000_000L)]
    [InlineData("1000", 1000L)]
    [InlineData(null, 0L)]
    public void Memory_quantities(string? quantity, long bytes) => MigrationPrecheck.ParseQuantity(quantity).ShouldBe(bytes);

    internal static PodMigration Migration(string name, string uid)
        => new() { Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = "default", Uid = uid }, Spec = new PodMigrationSpec { PodName = "counter" } };
}
