using System.Globalization;

namespace PodMigrate.Integration.Tests.Criu;

/// <summary>Reads the counter workload's output file (written by rename, so it is never half-written) and waits on it.</summary>
internal static class CounterProbe
{
    public static long? Read(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Polls until the counter reaches <paramref name="target"/>; every value seen is returned so a caller can assert
    /// it never went below a floor. Fails with the values seen when the token fires first.
    /// </summary>
    public static async Task<IReadOnlyList<long>> WaitForAsync(string path, long target, CancellationToken cancellationToken)
    {
        var seen = new List<long>();
        while (true)
        {
            if (Read(path) is { } value)
            {
                if (seen.Count == 0 || seen[^1] != value)
                {
                    seen.Add(value);
                }
                if (value >= target)
                {
                    return seen;
                }
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"{path} did not reach {target}; values seen: [{string.Join(", ", seen)}]");
            }
        }
    }
}
