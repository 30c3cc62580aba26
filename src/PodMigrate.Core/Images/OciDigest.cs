using System.Security.Cryptography;
using PodMigrate.Core.Errors;

namespace PodMigrate.Core.Images;

/// <summary>A content digest as OCI writes it, <c>sha256:&lt;64 lowercase hex&gt;</c> (the only algorithm PodMigrate produces or accepts).</summary>
public readonly record struct OciDigest
{
    private const string Prefix = "sha256:";

    private OciDigest(string hex) => Hex = hex;

    /// <summary>The 64 lowercase hex characters, which is also the blob's file name in an OCI layout.</summary>
    public string Hex { get; }

    public static OciDigest Parse(string value)
        => TryParse(value, out var digest) ? digest : throw PodMigrateException.InvalidArgument($"'{value}' is not a sha256 digest (sha256:<64 lowercase hex>)");

    public static bool TryParse(string? value, out OciDigest digest)
    {
        digest = default;
        if (value is null || !value.StartsWith(Prefix, StringComparison.Ordinal) || value.Length != Prefix.Length + 64)
        {
            return false;
        }

        var hex = value[Prefix.Length..];
        if (!hex.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f'))
        {
            return false;
        }

        digest = new OciDigest(hex);
        return true;
    }

    public static OciDigest FromHash(ReadOnlySpan<byte> sha256)
        => sha256.Length == SHA256.HashSizeInBytes
            ? new OciDigest(Convert.ToHexStringLower(sha256))
            : throw new ArgumentException("a sha256 hash is 32 bytes", nameof(sha256));

    public static OciDigest Compute(ReadOnlySpan<byte> content) => FromHash(SHA256.HashData(content));

    public override string ToString() => Hex is null ? string.Empty : Prefix + Hex;
}
