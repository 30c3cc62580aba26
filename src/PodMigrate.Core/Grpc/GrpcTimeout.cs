using System.Globalization;

namespace PodMigrate.Core.Grpc;

/// <summary>The grpc-timeout header: at most 8 ASCII digits followed by a unit (H, M, S, m, u, n).</summary>
internal static class GrpcTimeout
{
    private const long MaxValue = 99_999_999;

    private static readonly (long TicksPerUnit, char Unit)[] FormatUnits =
    [
        (TimeSpan.TicksPerMicrosecond, 'u'),
        (TimeSpan.TicksPerMillisecond, 'm'),
        (TimeSpan.TicksPerSecond, 'S'),
        (TimeSpan.TicksPerMinute, 'M'),
        (TimeSpan.TicksPerHour, 'H'),
    ];

    /// <summary>Formats in the finest unit that fits in 8 digits, rounding up so a short timeout never becomes 0.</summary>
    public static string Format(TimeSpan timeout)
    {
        var ticks = Math.Max(timeout.Ticks, 1);
        foreach (var (ticksPerUnit, unit) in FormatUnits)
        {
            var value = (ticks + ticksPerUnit - 1) / ticksPerUnit;
            if (value <= MaxValue)
            {
                return value.ToString(CultureInfo.InvariantCulture) + unit;
            }
        }
        return MaxValue.ToString(CultureInfo.InvariantCulture) + "H";
    }

    public static bool TryParse(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (value is null || value.Length is < 2 or > 9)
        {
            return false;
        }
        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        var amount = long.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        long? ticksPerUnit = value[^1] switch
        {
            'H' => TimeSpan.TicksPerHour,
            'M' => TimeSpan.TicksPerMinute,
            'S' => TimeSpan.TicksPerSecond,
            'm' => TimeSpan.TicksPerMillisecond,
            'u' => TimeSpan.TicksPerMicrosecond,
            'n' => null,
            _ => -1,
        };
        switch (ticksPerUnit)
        {
            case null:
                timeout = TimeSpan.FromTicks(amount / 100);
                return true;
            case < 0:
                return false;
            default:
                timeout = TimeSpan.FromTicks(amount * ticksPerUnit.Value);
                return true;
        }
    }
}
