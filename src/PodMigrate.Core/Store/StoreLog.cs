using Microsoft.Extensions.Logging;

namespace PodMigrate.Core.Store;

internal static partial class StoreLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Published checkpoint {CheckpointId}: {CompressedBytes} bytes ({RawBytes} raw, {Codec})")]
    public static partial void Published(ILogger logger, string checkpointId, long compressedBytes, long rawBytes, string codec);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Deleted checkpoint {CheckpointId}")]
    public static partial void Deleted(ILogger logger, string checkpointId);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Information, Message = "Retention removed checkpoint {CheckpointId}: {Reason}")]
    public static partial void RetentionRemoved(ILogger logger, string checkpointId, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Removed stale staging entry {Path}")]
    public static partial void StaleStagingRemoved(ILogger logger, string path);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "Skipping unreadable checkpoint {Path}")]
    public static partial void UnreadableSkipped(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Error, Message = "Could not remove staging directory {Path}")]
    public static partial void StagingRemovalFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "Accepted checkpoint {CheckpointId} without a signature: unsigned checkpoints are allowed (a development setting; anyone who can write to the share can plant one)")]
    public static partial void UnsignedAccepted(ILogger logger, string checkpointId);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Checkpoint {CheckpointId} extracted while it was being published, then verified against its sealed or published manifest")]
    public static partial void ExtractedWhilePublished(ILogger logger, string checkpointId);
    [LoggerMessage(EventId = 3012, Level = LogLevel.Information, Message = "Checkpoint {CheckpointId} sealed in the share's staging ({CompressedBytes} bytes): a follower may use it; making it durable")]
    public static partial void Sealed(ILogger logger, string checkpointId, long compressedBytes);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Information, Message = "Checkpoint {CheckpointId} made durable after its seal in {Milliseconds} ms")]
    public static partial void MadeDurable(ILogger logger, string checkpointId, long milliseconds);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "Checkpoint {CheckpointId}: another writer published the same id first ({Path} holds its manifest, not ours)")]
    public static partial void PublishRaceLost(ILogger logger, string checkpointId, string path);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Debug, Message = "The share {Path} does not report its free space (0 blocks in all): the write will find out whether the checkpoint fits")]
    public static partial void FreeSpaceUnknown(ILogger logger, string path);
}
