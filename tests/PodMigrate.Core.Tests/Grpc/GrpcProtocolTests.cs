using PodMigrate.Core.Grpc;

namespace PodMigrate.Core.Tests.Grpc;

[Trait("Category", "Unit")]
public sealed class GrpcProtocolTests
{
    [Theory]
    [InlineData(1, "1u")]
    [InlineData(10_000, "1000u")]
    [InlineData(99_999_999_0, "99999999u")]
    [InlineData(99_999_999_1, "100000m")]
    [InlineData(TimeSpan.TicksPerHour * 24 * 365, "31536000S")]
    public void Timeout_is_formatted_in_the_finest_unit_that_fits_8_digits_rounding_up(long ticks, string expected)
        => GrpcTimeout.Format(TimeSpan.FromTicks(ticks)).ShouldBe(expected);

    [Fact]
    public void Zero_or_negative_timeout_is_sent_as_the_smallest_positive_one()
    {
        GrpcTimeout.Format(TimeSpan.Zero).ShouldBe("1u");
        GrpcTimeout.Format(TimeSpan.FromSeconds(-3)).ShouldBe("1u");
    }

    [Theory]
    [InlineData("1H", 3600_000)]
    [InlineData("2M", 120_000)]
    [InlineData("3S", 3000)]
    [InlineData("250m", 250)]
    [InlineData("1500u", 1.5)]
    [InlineData("2000000n", 2)]
    [InlineData("99999999m", 99_999_999)]
    public void Timeout_parses_every_unit(string value, double expectedMilliseconds)
    {
        GrpcTimeout.TryParse(value, out var timeout).ShouldBeTrue();
        timeout.TotalMilliseconds.ShouldBe(expectedMilliseconds);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("m")]
    [InlineData("10")]
    [InlineData("10x")]
    [InlineData("-1S")]
    [InlineData("123456789S")]
    [InlineData("1.5S")]
    public void Malformed_timeout_is_rejected(string? value) => GrpcTimeout.TryParse(value, out _).ShouldBeFalse();

    [Theory]
    [InlineData("plain ascii", "plain ascii")]
    [InlineData("100%", "100%25")]
    [InlineData("a\nb", "a%0Ab")]
    [InlineData("é", "%C3%A9")]
    public void Message_is_percent_encoded_as_the_spec_says(string message, string encoded)
    {
        GrpcProtocol.EncodeMessage(message).ShouldBe(encoded);
        GrpcProtocol.DecodeMessage(encoded).ShouldBe(message);
    }

    [Theory]
    [InlineData("%zz stays", "%zz stays")]
    [InlineData("trailing %", "trailing %")]
    [InlineData("trailing %4", "trailing %4")]
    public void Malformed_percent_sequences_are_kept(string encoded, string decoded)
        => GrpcProtocol.DecodeMessage(encoded).ShouldBe(decoded);

    [Theory]
    [InlineData(400, StatusCode.Internal)]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(403, StatusCode.PermissionDenied)]
    [InlineData(404, StatusCode.Unimplemented)]
    [InlineData(415, StatusCode.Unknown)]
    [InlineData(429, StatusCode.Unavailable)]
    [InlineData(502, StatusCode.Unavailable)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(504, StatusCode.Unavailable)]
    [InlineData(500, StatusCode.Unknown)]
    public void Http_status_maps_per_the_grpc_table(int httpStatus, StatusCode expected)
        => GrpcProtocol.FromHttpStatus(httpStatus).ShouldBe(expected);

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("application/grpcx", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Content_type_check(string? contentType, bool expected)
        => GrpcProtocol.IsGrpcContentType(contentType).ShouldBe(expected);
}
