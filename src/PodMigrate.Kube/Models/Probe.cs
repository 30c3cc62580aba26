using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace PodMigrate.Kube.Models;

/// <summary>core/v1 Probe: one handler (exec, httpGet, tcpSocket or grpc) and its timing; unset numbers take the API's defaults.</summary>
public sealed class Probe
{
    public ExecAction? Exec { get; set; }

    public HttpGetAction? HttpGet { get; set; }

    public TcpSocketAction? TcpSocket { get; set; }

    /// <summary>grpc and anything newer, kept as JSON.</summary>
    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }

    public int? InitialDelaySeconds { get; set; }

    /// <summary>Default 1.</summary>
    public int? TimeoutSeconds { get; set; }

    /// <summary>Default 10.</summary>
    public int? PeriodSeconds { get; set; }

    /// <summary>Default 1.</summary>
    public int? SuccessThreshold { get; set; }

    /// <summary>Default 3.</summary>
    public int? FailureThreshold { get; set; }
}

public sealed class ExecAction
{
    public List<string>? Command { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class HttpGetAction
{
    public string? Path { get; set; }

    public IntOrString Port { get; set; }

    /// <summary>Default: the pod's IP.</summary>
    public string? Host { get; set; }

    /// <summary>HTTP (default) or HTTPS.</summary>
    public string? Scheme { get; set; }

    public List<HttpHeader>? HttpHeaders { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class HttpHeader
{
    public string Name { get; set; } = "";

    public string Value { get; set; } = "";

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

public sealed class TcpSocketAction
{
    public IntOrString Port { get; set; }

    /// <summary>Default: the pod's IP.</summary>
    public string? Host { get; set; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? ExtensionData { get; set; }
}

/// <summary>intstr.IntOrString: a port number or the name of a container port.</summary>
[JsonConverter(typeof(IntOrStringConverter))]
public readonly record struct IntOrString
{
    private IntOrString(int? number, string? name)
    {
        Number = number;
        Name = name;
    }

    public int? Number { get; }

    public string? Name { get; }

    public static IntOrString FromInt32(int value) => new(value, null);

    public static IntOrString FromString(string value) => new(null, value);

    public static implicit operator IntOrString(int value) => FromInt32(value);

    public static implicit operator IntOrString(string value) => FromString(value);

    public override string ToString() => Number?.ToString(CultureInfo.InvariantCulture) ?? Name ?? "";
}

public sealed class IntOrStringConverter : JsonConverter<IntOrString>
{
    public override IntOrString Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.Number => IntOrString.FromInt32(reader.GetInt32()),
        JsonTokenType.String => IntOrString.FromString(reader.GetString()!),
        _ => throw new JsonException($"expected a number or a string, not {reader.TokenType}"),
    };

    public override void Write(Utf8JsonWriter writer, IntOrString value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        if (value.Number is { } number)
        {
            writer.WriteNumberValue(number);
        }
        else
        {
            writer.WriteStringValue(value.Name ?? "");
        }
    }
}
