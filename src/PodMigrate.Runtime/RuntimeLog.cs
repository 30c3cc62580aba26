using System.Text;
using System.Text.Json;

namespace PodMigrate.Runtime;

/// <summary>
/// Where the runtime says what it did: runc's own log file (--log) in runc's format, else stderr. The shim reports the
/// last "error" entry of that file as the reason of a failed create (what the kubelet shows), so a refusal is written
/// last. Not both: under a shim, stderr of `create` is the container's own stderr (its log), which is not ours to write.
/// </summary>
internal sealed class RuntimeLog(string? logFile, string? logFormat)
{
    public void Info(string message) => Write("info", message);

    public void Error(string message) => Write("error", message);

    private void Write(string level, string message)
    {
        var now = DateTimeOffset.UtcNow;
        if (string.IsNullOrEmpty(logFile))
        {
            WriteStandardError(message);
            return;
        }
        try
        {
            using var file = new FileStream(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            if (logFormat == "json")
            {
                using var json = new Utf8JsonWriter(file);
                json.WriteStartObject();
                json.WriteString("level", level);
                json.WriteString("msg", message);
                json.WriteString("time", now.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture));
                json.WriteEndObject();
                json.Flush();
                file.WriteByte((byte)'\n');
            }
            else
            {
                file.Write(Encoding.UTF8.GetBytes(
                    $"time=\"{now:yyyy-MM-ddTHH:mm:ssZ}\" level={level} msg=\"{message.Replace("\"", "\\\"", StringComparison.Ordinal)}\"\n"));
            }
        }
        catch (IOException)
        {
            WriteStandardError(message);
        }
        catch (UnauthorizedAccessException)
        {
            WriteStandardError(message);
        }
    }

    private static void WriteStandardError(string message)
    {
        try
        {
            using var stderr = Console.OpenStandardError();
            stderr.Write(Encoding.UTF8.GetBytes($"podmigrate-runc: {message}\n"));
        }
        catch (IOException)
        {
            // nowhere left to say it
        }
    }
}
