using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Store;

/// <summary>
/// A checkpoint's name on the share and in the API: lowercase letters, digits and '-', starting and ending with a
/// letter or digit, at most 63 characters (a DNS label, so it also fits Kubernetes names and file names anywhere).
/// </summary>
public readonly partial record struct CheckpointId
{
    public const int MaxLength = 63;

    private CheckpointId(string value) => Value = value;

    public string Value { get; }

    public static CheckpointId Parse(string? value)
        => TryParse(value, out var id)
            ? id
            : throw PodMigrateException.InvalidArgument(
                $"invalid checkpoint id \"{value}\": use 1 to {MaxLength} lowercase letters, digits and '-', starting and ending with a letter or digit");

    public static bool TryParse([NotNullWhen(true)] string? value, out CheckpointId id)
    {
        if (value is { Length: > 0 and <= MaxLength } && Pattern().IsMatch(value))
        {
            id = new CheckpointId(value);
            return true;
        }

        id = default;
        return false;
    }

    /// <summary>A new id: "ck-" + UTC time to the second + 8 random hex digits, so ids sort by time.</summary>
    public static CheckpointId New(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return new CheckpointId($"ck-{time.GetUtcNow():yyyyMMdd-HHmmss}-{Convert.ToHexStringLower(random)}");
    }

    public override string ToString() => Value ?? "";

    [GeneratedRegex(@"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\z", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
