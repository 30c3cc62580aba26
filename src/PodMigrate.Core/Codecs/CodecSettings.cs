namespace PodMigrate.Core.Codecs;

/// <summary>A codec by name with its level, as recorded in a checkpoint manifest.</summary>
public sealed record CodecSettings(string Name, int Level);
