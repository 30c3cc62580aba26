using System.Globalization;

namespace PodMigrate.Kube.Models;

/// <summary>resource.Quantity for memory, as far as PodMigrate reads and writes it.</summary>
public static class Quantities
{
    private static readonly string[] Suffixes = ["Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"];
    private static readonly long[] Factors = [1L << 10, 1L << 20, 1L << 30, 1L << 40, 1000, 1_000_000, 1_000_000_000, 1_000_000_000_000];

    /// <summary>A memory quantity ("8Gi", "1024Ki", "512M", "1000") in bytes; 0 when absent or unreadable.</summary>
    public static long ParseBytes(string? quantity)
    {
        if (string.IsNullOrEmpty(quantity))
        {
            return 0;
        }
        for (var i = 0; i < Suffixes.Length; i++)
        {
            if (quantity.EndsWith(Suffixes[i], StringComparison.Ordinal)
                && decimal.TryParse(quantity.AsSpan(0, quantity.Length - Suffixes[i].Length), NumberStyles.Number, CultureInfo.InvariantCulture, out var scaled))
            {
                return (long)(scaled * Factors[i]);
            }
        }
        return decimal.TryParse(quantity, NumberStyles.Number, CultureInfo.InvariantCulture, out var plain) ? (long)plain : 0;
    }
}
