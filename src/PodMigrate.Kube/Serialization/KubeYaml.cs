using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using PodMigrate.Core.Errors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PodMigrate.Kube.Serialization;

/// <summary>
/// YAML manifests → Kubernetes JSON, so that YAML and JSON reach the same models through the same
/// deserializer. Plain scalars are typed by the YAML 1.2 core schema (null, bool, int, float); quoted
/// scalars are always strings. Errors name the source, line and column.
/// </summary>
public static partial class KubeYaml
{
    private const string TagStr = "tag:yaml.org,2002:str";

    /// <summary>Every non-empty document of <paramref name="yaml"/>, as UTF-8 JSON.</summary>
    public static IReadOnlyList<byte[]> ToJsonDocuments(string yaml, string source)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            throw Error(source, e.Start, e.InnerException?.Message ?? e.Message, e);
        }
        var documents = new List<byte[]>();
        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" } && document.RootNode.Tag.IsEmpty)
            {
                continue;
            }
            var buffer = new ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                Write(writer, document.RootNode, source);
            }
            documents.Add(buffer.WrittenSpan.ToArray());
        }
        return documents;
    }

    private static void Write(Utf8JsonWriter writer, YamlNode node, string source)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                writer.WriteStartObject();
                foreach (var (keyNode, value) in mapping.Children)
                {
                    if (keyNode is not YamlScalarNode { Value: { } key })
                    {
                        throw Error(source, keyNode.Start, "mapping keys must be strings");
                    }
                    writer.WritePropertyName(key);
                    Write(writer, value, source);
                }
                writer.WriteEndObject();
                break;
            case YamlSequenceNode sequence:
                writer.WriteStartArray();
                foreach (var item in sequence.Children)
                {
                    Write(writer, item, source);
                }
                writer.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                WriteScalar(writer, scalar, source);
                break;
            default:
                throw Error(source, node.Start, $"unsupported YAML node {node.NodeType}");
        }
    }

    private static void WriteScalar(Utf8JsonWriter writer, YamlScalarNode scalar, string source)
    {
        var text = scalar.Value ?? "";
        if (scalar.Style is not ScalarStyle.Plain || (!scalar.Tag.IsEmpty && !scalar.Tag.IsNonSpecific && scalar.Tag.Value == TagStr))
        {
            writer.WriteStringValue(text);
            return;
        }
        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                writer.WriteNullValue();
                return;
            case "true" or "True" or "TRUE":
                writer.WriteBooleanValue(true);
                return;
            case "false" or "False" or "FALSE":
                writer.WriteBooleanValue(false);
                return;
        }
        if (LeadingZeroInt().IsMatch(text))
        {
            // YAML 1.1 (kubectl, sigs.k8s.io/yaml) reads 0400 as octal 256, YAML 1.2 as decimal 400, JSON not at all:
            // a file mode written so would mean different things to kubectl and to PodMigrate.
            throw Error(source, scalar.Start, $"{text} is octal to YAML 1.1 (kubectl) and decimal to YAML 1.2; write the number in decimal (0400 is 256), or quote it if it is a string");
        }
        if (DecimalInt().IsMatch(text))
        {
            // Integers keep their digits (no double rounding); JSON has no leading '+'.
            writer.WriteRawValue(text.TrimStart('+'), skipInputValidation: false);
        }
        else if (text.StartsWith("0x", StringComparison.Ordinal) && long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var hex))
        {
            writer.WriteNumberValue(hex);
        }
        else if (text.StartsWith("0o", StringComparison.Ordinal) && OctalDigits().IsMatch(text[2..]))
        {
            writer.WriteNumberValue(Convert.ToInt64(text[2..], 8));
        }
        else if (Float().IsMatch(text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
        {
            writer.WriteNumberValue(number);
        }
        else if (text is ".inf" or "-.inf" or "+.inf" or ".nan" or ".Inf" or ".NaN" or ".INF" or ".NAN")
        {
            throw Error(source, scalar.Start, $"{text} has no JSON representation; quote it if it is a string");
        }
        else
        {
            writer.WriteStringValue(text);
        }
    }

    private static PodMigrateException Error(string source, Mark at, string message, Exception? inner = null)
        => new(ErrorKind.InvalidArgument, $"{source}:{at.Line}:{at.Column}: invalid YAML: {message}", inner);

    [GeneratedRegex(@"^[-+]?[0-9]+$")]
    private static partial Regex DecimalInt();

    [GeneratedRegex(@"^[-+]?0[0-9]+$")]
    private static partial Regex LeadingZeroInt();

    [GeneratedRegex(@"^[0-7]+$")]
    private static partial Regex OctalDigits();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    private static partial Regex Float();
}
