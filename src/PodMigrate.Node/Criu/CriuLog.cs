namespace PodMigrate.Node.Criu;

/// <summary>What of a CRIU log explains a failure: its error lines (CRIU prefixes them "Error (file:line):").</summary>
public static class CriuLog
{
    private const int MaxLines = 20;

    /// <summary>The last error lines of the log, or null when the log is missing or has none.</summary>
    public static async Task<string?> ErrorExcerptAsync(string logPath, CancellationToken cancellationToken)
    {
        if (!File.Exists(logPath))
        {
            return null;
        }
        var errors = new Queue<string>();
        await foreach (var line in File.ReadLinesAsync(logPath, cancellationToken))
        {
            if (line.Contains("Error", StringComparison.Ordinal))
            {
                if (errors.Count == MaxLines)
                {
                    errors.Dequeue();
                }
                errors.Enqueue(line);
            }
        }
        return errors.Count == 0 ? null : $"{logPath}:\n{string.Join('\n', errors)}";
    }
}
