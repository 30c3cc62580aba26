using System.Text;
using System.Text.Json.Nodes;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Authorization;

/// <summary>
/// kubectl's typed clients send built-in kinds as Kubernetes protobuf ("k8s\0" + runtime.Unknown{typeMeta = 1, raw = 2}):
/// `kubectl auth can-i` posts its SelfSubjectAccessReview so. This reads just that message's spec (generated.proto of
/// authorization/v1: spec = 2; resourceAttributes = 1 {namespace 1, verb 2, group 3, version 4, resource 5, subresource 6,
/// name 7}; nonResourceAttributes = 2 {path 1, verb 2}) into the JSON shape, so that the review is answered the same way;
/// the answer goes back as JSON, which the client also accepts.
/// </summary>
internal static class ReviewProtobuf
{
    public const string ContentType = "application/vnd.kubernetes.protobuf";

    private static readonly string[] ResourceFields = ["", "namespace", "verb", "group", "version", "resource", "subresource", "name"];
    private static readonly string[] NonResourceFields = ["", "path", "verb"];

    public static bool IsProtobuf(string? contentType) => contentType?.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The SelfSubjectAccessReview in <paramref name="body"/> as JSON (metadata and status are not read).</summary>
    public static JsonObject SelfSubjectAccessReview(ReadOnlyMemory<byte> body)
    {
        if (body.Length < 4 || !body.Span[..4].SequenceEqual("k8s\0"u8))
        {
            throw PodMigrateException.InvalidArgument("a protobuf body must start with the k8s\\0 magic");
        }
        var raw = Fields(body[4..]).FirstOrDefault(f => f.Field == 2).Value;
        var spec = new JsonObject();
        foreach (var (field, value) in Fields(Fields(raw).FirstOrDefault(f => f.Field == 2).Value))
        {
            var (name, names) = field switch
            {
                1 => ("resourceAttributes", ResourceFields),
                2 => ("nonResourceAttributes", NonResourceFields),
                _ => ((string?)null, Array.Empty<string>()),
            };
            if (name is null)
            {
                continue;
            }
            var attributes = new JsonObject();
            foreach (var (number, text) in Fields(value))
            {
                if (number < names.Length)
                {
                    attributes[names[number]] = Encoding.UTF8.GetString(text.Span);
                }
            }
            spec[name] = attributes;
        }
        return new JsonObject { ["apiVersion"] = "authorization.k8s.io/v1", ["kind"] = "SelfSubjectAccessReview", ["spec"] = spec };
    }

    /// <summary>The length-delimited fields of a message (others are skipped).</summary>
    private static List<(int Field, ReadOnlyMemory<byte> Value)> Fields(ReadOnlyMemory<byte> message)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        var position = 0;
        while (position < message.Length)
        {
            var tag = Varint(message.Span, ref position);
            var field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    Varint(message.Span, ref position);
                    break;
                case 1:
                    position += 8;
                    break;
                case 5:
                    position += 4;
                    break;
                case 2:
                    var length = (int)Varint(message.Span, ref position);
                    if (length < 0 || position + length > message.Length)
                    {
                        throw PodMigrateException.InvalidArgument("a protobuf field runs past the end of the body");
                    }
                    fields.Add((field, message.Slice(position, length)));
                    position += length;
                    break;
                default:
                    throw PodMigrateException.InvalidArgument($"unsupported protobuf wire type {tag & 7}");
            }
        }
        return fields;
    }

    private static ulong Varint(ReadOnlySpan<byte> data, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= data.Length)
            {
                throw PodMigrateException.InvalidArgument("a protobuf varint runs past the end of the body");
            }
            var b = data[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
        throw PodMigrateException.InvalidArgument("a protobuf varint is too long");
    }
}
