using System.Globalization;
using System.Text;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.Serialization;

/// <summary>
/// metav1.Duration as Kubernetes writes it: Go's time.Duration text ("10s", "1m30s", "250ms", "1h"). Parsing accepts
/// what Go's ParseDuration accepts for non-negative values (ns, us/µs, ms, s, m, h; decimals); formatting gives the
/// shortest form Go would print for the same value, rounded to milliseconds, which is what status fields need.
/// </summary>
public static class KubeDuration
{
    public static TimeSpan Parse(string text, string field)
    {
        if (!TryParse(text, out var value))
        {
            throw PodMigrateException.InvalidArgument($"{field}: '{text}' is not a duration (examples: 30s, 1m30s, 500ms, 1h)");
        }
        return value;
    }

    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var s = text.Trim();
        if (s == "0")
        {
            return true;
        }
        double totalMs = 0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            if (i == start || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }
            double? unitMs = s[unitStart..i] switch
            {
                "ns" => 1e-6,
                "us" or "µs" => 1e-3,
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                _ => null,
            };
            if (unitMs is null)
            {
                return false;
            }
            totalMs += number * unitMs.Value;
        }
        if (totalMs > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }
        // Rounded to ticks: "16.016s" sums to 16015.999999999998 ms in binary floating point, one tick short of 16016 ms.
        value = TimeSpan.FromTicks((long)Math.Round(totalMs * TimeSpan.TicksPerMillisecond));
        return true;
    }

    /// <summary>"1.234s", "2m3.5s", "450ms", "0s".</summary>
    public static string Format(TimeSpan value)
    {
        var ms = (long)Math.Round(value.TotalMilliseconds);
        if (ms <= 0)
        {
            return "0s";
        }
        if (ms < 1000)
        {
            return ms.ToString(CultureInfo.InvariantCulture) + "ms";
        }
        var text = new StringBuilder();
        var hours = ms / 3_600_000;
        var minutes = ms / 60_000 % 60;
        var seconds = ms % 60_000 / 1000.0;
        if (hours > 0)
        {
            text.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }
        if (hours > 0 || minutes > 0)
        {
            text.Append(minutes.ToString(CultureInfo.InvariantCulture)).Append('m');
        }
        text.Append(seconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return text.ToString();
    }
}
