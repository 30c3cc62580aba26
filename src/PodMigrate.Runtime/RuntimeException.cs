namespace PodMigrate.Runtime;

/// <summary>A create the runtime refuses or could not complete; its message is what the kubelet shows.</summary>
internal sealed class RuntimeException(string message, Exception? inner = null) : Exception(message, inner);
