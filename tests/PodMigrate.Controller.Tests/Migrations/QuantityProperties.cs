using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PodMigrate.Controller.Migrations;

namespace PodMigrate.Controller.Tests.Migrations;

/// <summary>resource.Quantity memory text (as a node's allocatable reports it) read back as bytes.</summary>
[Trait("Category", "Unit")]
public sealed class QuantityProperties
{
    private static readonly (string Suffix, long Factor)[] Suffixes =
        [("", 1), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000), ("Ki", 1L << 10), ("Mi", 1L << 20), ("Gi", 1L << 30), ("Ti", 1L << 40)];

    [Property(MaxTest = 2000)]
    public Property An_integer_with_a_suffix_is_that_many_units()
        => Prop.ForAll(Gen.Choose(0, 1 << 20).Zip(Gen.Elements(Suffixes)).ToArbitrary(), q =>
            MigrationPrecheck.ParseQuantity($"{q.Item1}{q.Item2.Suffix}") == q.Item1 * q.Item2.Factor);

    [Property(MaxTest = 2000)]
    public Property A_larger_quantity_is_never_fewer_bytes()
        => Prop.ForAll(Gen.Choose(0, 1 << 20).Two().Zip(Gen.Elements(Suffixes)).ToArbitrary(), q =>
        {
            var ((a, b), (suffix, _)) = q;
            var (low, high) = a <= b ? (a, b) : (b, a);
            return MigrationPrecheck.ParseQuantity($"{low}{suffix}") <= MigrationPrecheck.ParseQuantity($"{high}{suffix}");
        });
}
