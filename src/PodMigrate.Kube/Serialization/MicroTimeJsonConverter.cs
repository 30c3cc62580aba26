using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Serialization;

/// <summary>
/// metav1.MicroTime (Lease acquireTime/renewTime, events.k8s.io eventTime): the API server parses it with the layout
/// 2006-01-02T15:04:05.000000Z07:00, which demands exactly six fractional digits. System.Text.Json's default writes up to
/// seven and drops trailing zeros, which a real API server rejects; this writes UTC with exactly six.
/// </summary>
public sealed class MicroTimeJsonConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        => DateTimeOffset.Parse(reader.GetString() ?? throw new JsonException("a MicroTime is a string"), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
    }
}
