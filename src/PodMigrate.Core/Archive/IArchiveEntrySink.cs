namespace PodMigrate.Core.Archive;

/// <summary>
/// Where <see cref="CheckpointArchiveReader"/>'s verifying pass puts each entry once it has checked its name and type:
/// a directory on disk, or another tar. Sizes and digests are checked by the pass around the sink.
/// </summary>
internal interface IArchiveEntrySink
{
    /// <summary>Where the entries go, for error messages.</summary>
    string Location { get; }

    ValueTask DirectoryAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Consumes a file's <paramref name="data"/> (read it to the end). <paramref name="verify"/> throws DataLoss unless
    /// the bytes read so far are the whole entry with the manifest's sha256: call it before acting on the content.
    /// </summary>
    ValueTask FileAsync(string name, long length, Stream data, Func<ValueTask> verify, CancellationToken cancellationToken);
}
