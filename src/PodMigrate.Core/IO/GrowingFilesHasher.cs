using System.Security.Cryptography;

namespace PodMigrate.Core.IO;

/// <summary>The size and lowercase hex sha256 of a file.</summary>
public readonly record struct FileDigest(long Size, string Sha256);

/// <summary>
/// Hashes the files another process is still writing, following each as it grows: while CRIU dumps a container's
/// memory into pages-*.img (one core, in the kernel), the other core reads and hashes what is already there, so the
/// archive pass after the dump need not hash those files again. Files matching <c>pattern</c> in the directory are
/// picked up as they appear; <see cref="CompleteAsync"/>, called once the writer has finished, reads each to its end and
/// gives the digests by file name. Only sound for files written front to back and never rewritten (CRIU's page images);
/// the archive checks that each file still has the size hashed, and a restore checks every digest again.
/// </summary>
public sealed class GrowingFilesHasher : IAsyncDisposable
{
    private const int ChunkSize = 1 << 20;
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(2);

    private readonly string _directory;
    private readonly string _pattern;
    private readonly Dictionary<string, Task<FileDigest>> _followers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _watcher;
    private int _finished;

    public GrowingFilesHasher(string directory, string pattern)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        _directory = directory;
        _pattern = pattern;
        _watcher = Task.Run(WatchAsync);
    }

    /// <summary>The writer is done: reads every followed file to its end and returns the digests by file name.</summary>
    public async Task<IReadOnlyDictionary<string, FileDigest>> CompleteAsync(CancellationToken cancellationToken)
    {
        _writerDone.TrySetResult();
        await _watcher.WaitAsync(cancellationToken);
        var digests = new Dictionary<string, FileDigest>(StringComparer.Ordinal);
        foreach (var (name, follower) in _followers)
        {
            digests[name] = await follower.WaitAsync(cancellationToken);
        }
        return digests;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _finished, 1) == 1)
        {
            return;
        }
        _writerDone.TrySetResult();
        await _stop.CancelAsync();
        // The watcher first: until it has stopped it may still add followers.
        await AbandonAsync(_watcher);
        foreach (var follower in _followers.Values)
        {
            await AbandonAsync(follower);
        }
        _stop.Dispose();
    }

    /// <summary>Waits for a task nobody wants the result of any more; its cancellation or I/O failure is no news.</summary>
    private static async Task AbandonAsync(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or UnauthorizedAccessException)
        {
        }
    }

    private async Task WatchAsync()
    {
        while (true)
        {
            // Read before the scan: a file that appears after a scan that saw the writer done cannot exist.
            var done = _writerDone.Task.IsCompleted;
            if (Directory.Exists(_directory))
            {
                foreach (var path in Directory.EnumerateFiles(_directory, _pattern))
                {
                    var name = Path.GetFileName(path);
                    if (!_followers.ContainsKey(name))
                    {
                        _followers[name] = Task.Run(() => FollowAsync(path, _stop.Token));
                    }
                }
            }
            if (done)
            {
                return;
            }
            await Task.WhenAny(_writerDone.Task, Task.Delay(PollInterval, _stop.Token));
            _stop.Token.ThrowIfCancellationRequested();
        }
    }

    private async Task<FileDigest> FollowAsync(string path, CancellationToken cancellationToken)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArchiveBuffers.Pool.Rent(ChunkSize);
        try
        {
            long offset = 0;
            while (true)
            {
                // Only a read that finds nothing after the writer was already done is the end of the file.
                var done = _writerDone.Task.IsCompleted;
                var read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, ChunkSize), offset, cancellationToken);
                if (read > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    offset += read;
                    continue;
                }
                if (done)
                {
                    return new FileDigest(offset, Convert.ToHexStringLower(hash.GetHashAndReset()));
                }
                await Task.WhenAny(_writerDone.Task, Task.Delay(PollInterval, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            ArchiveBuffers.Pool.Return(buffer);
        }
    }
}
