using System.Text.Json.Serialization;

namespace PodMigrate.Runtime;

[JsonSerializable(typeof(string[]))]
internal sealed partial class RuntimeJson : JsonSerializerContext;
