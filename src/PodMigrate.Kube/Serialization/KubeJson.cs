using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.Serialization;

/// <summary>Kubernetes JSON in and out, with the errors a user can act on (which field, which document).</summary>
public static class KubeJson
{
    public static string Serialize<T>(T value, JsonTypeInfo<T> typeInfo) => JsonSerializer.Serialize(value, typeInfo);

    public static T Deserialize<T>(ReadOnlySpan<byte> utf8Json, JsonTypeInfo<T> typeInfo, string source)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8Json, typeInfo)
                ?? throw PodMigrateException.InvalidArgument($"{source}: the document is null, not a {typeof(T).Name}");
        }
        catch (JsonException e)
        {
            // e.Path names the field, e.g. $.spec.containers[0].env[0].value.
            throw new PodMigrateException(ErrorKind.InvalidArgument, $"{source}: {typeof(T).Name} field {e.Path ?? "$"}: {FirstLine(e.Message)}", e);
        }
    }

    public static T Deserialize<T>(string json, JsonTypeInfo<T> typeInfo, string source)
        => Deserialize(System.Text.Encoding.UTF8.GetBytes(json), typeInfo, source);

    private static string FirstLine(string message)
    {
        var end = message.IndexOf(" Path:", StringComparison.Ordinal);
        return end > 0 ? message[..end] : message;
    }
}
