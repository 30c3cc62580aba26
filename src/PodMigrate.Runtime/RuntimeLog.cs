using System.Text;
using System.Text.Json;

namespace PodMigrate.Runtime;

/// <summary>
/// Where the runtime says what it did: stderr, and runc's own log file in runc's format. The shim reports the last
/// "error" entry of that file as the reason of a failed create (what the kubelet shows), so a refusal is written last.
/// </summary>
internal sealed class RuntimeLog(string? logFile, string? logFormat)
{
    public void Info(string message) => Write("info", message);

    public void Error(string message) => Write("error", message);

    private void Write(string level, string message)
    {
        var now = DateTimeOffset.UtcNow;
        try
        {
            var line = Encoding.UTF8.GetBytes($"podmigrate-runc: {message}\n");
            using var stderr = Console.OpenStandardError();
            stderr.Write(line);
        }
        catch (IOException)
        {
            // stderr closed: the log file below still has it
        }
        if (string.IsNullOrEmpty(logFile))
        {
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
            // the log is best effort; stderr has the message
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
