using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PodMigrate.Kube.Serialization;

namespace PodMigrate.Kube.Tests.Properties;

/// <summary>metav1.Duration text: what Format writes, Parse reads back; Go's own spellings parse to their value.</summary>
[Trait("Category", "Unit")]
public sealed class KubeDurationProperties
{
    // Milliseconds from 0 to about 11 days, denser where the formats switch (below 1 s, below 1 min, below 1 h).
    private static Arbitrary<long> Milliseconds()
        => Gen.OneOf(Gen.Choose(0, 1_000), Gen.Choose(0, 60_000), Gen.Choose(0, 3_600_000), Gen.Choose(0, 1_000_000_000))
            .Select(i => (long)i).ToArbitrary();

    [Property(MaxTest = 2000)]
    public Property Parse_of_Format_is_the_identity_to_the_millisecond()
        => Prop.ForAll(Milliseconds(), ms =>
        {
            var value = TimeSpan.FromMilliseconds(ms);
            return KubeDuration.TryParse(KubeDuration.Format(value), out var parsed) && parsed == value;
        });

    [Property(MaxTest = 2000)]
    public Property Go_spellings_parse_to_their_value()
        => Prop.ForAll(Gen.Choose(0, 99).Four().ToArbitrary(), parts =>
        {
            var (h, m, s, ms) = parts;
            var text = $"{h}h{m}m{s}s{ms}ms";
            var expected = TimeSpan.FromHours(h) + TimeSpan.FromMinutes(m) + TimeSpan.FromSeconds(s) + TimeSpan.FromMilliseconds(ms);
            return KubeDuration.TryParse(text, out var parsed) && parsed == expected;
        });
}
