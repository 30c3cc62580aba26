using System.Text.Json.Serialization;

namespace PodMigrate.Runtime;

[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(LazyPagesJob))]
internal sealed partial class RuntimeJson : JsonSerializerContext;
