using System.Text;
using PodMigrate.Core.Archive;
using PodMigrate.Core.Errors;
using PodMigrate.Core.Store;

namespace PodMigrate.Fuzz.Harnesses;

/// <summary>
/// Checkpoint ids and archive path rules on untrusted text. The input is UTF-8 (invalid bytes become U+FFFD); its first
/// line is an entry name and checkpoint id, its second a symlink target. A bug is: an accepted id that is not a plain
/// DNS label or would leave the store's directory; Parse and TryParse disagreeing, or Parse failing with anything but
/// InvalidArgument; an accepted entry name that is not canonical (Normalize not idempotent), holds a "..", "." or empty
/// segment, or resolves outside the root; a name with a ".." segment accepted; an accepted link target that resolves
/// (lexically) outside the root; any exception at all.
/// </summary>
public static class PathsHarness
{
    private const string Root = "/fuzz/root";

    public static void Run(ReadOnlySpan<byte> input)
    {
        var text = Encoding.UTF8.GetString(input);
        var newline = text.IndexOf('\n', StringComparison.Ordinal);
        var name = newline < 0 ? text : text[..newline];
        var link = newline < 0 ? "" : text[(newline + 1)..];
        CheckId(text);
        CheckId(name);
        CheckName(name);
        CheckLink(name, link);
    }

    private static void CheckId(string value)
    {
        var accepted = CheckpointId.TryParse(value, out var id);
        PodMigrateException? refused = null;
        try
        {
            var parsed = CheckpointId.Parse(value);
            if (!accepted || parsed != id)
            {
                throw new FuzzFindingException($"CheckpointId.Parse accepted \"{value}\" but TryParse said {accepted}");
            }
        }
        catch (PodMigrateException e) when (e.Kind == ErrorKind.InvalidArgument)
        {
            refused = e;
        }

        if (accepted == (refused is not null))
        {
            throw new FuzzFindingException($"CheckpointId.TryParse said {accepted} for \"{value}\" but Parse {(refused is null ? "accepted" : "refused")} it");
        }

        if (!accepted)
        {
            return;
        }

        var v = id.Value;
        if (v != value || v.Length is < 1 or > CheckpointId.MaxLength || v[0] == '-' || v[^1] == '-'
            || !v.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
        {
            throw new FuzzFindingException($"CheckpointId accepted \"{value}\" as \"{v}\", which is not a DNS label");
        }

        var directory = Path.GetFullPath(Path.Combine(Root, v));
        if (Path.GetDirectoryName(directory) != Root || Path.GetFileName(directory) != v)
        {
            throw new FuzzFindingException($"checkpoint id \"{v}\" names {directory}, not a child of {Root}");
        }
    }

    private static void CheckName(string name)
    {
        var normalized = ArchivePaths.Normalize(name);
        var segments = name.Split('/');
        if (segments.Contains("..") && normalized is not null)
        {
            throw new FuzzFindingException($"ArchivePaths.Normalize accepted \"{name}\", which has a \"..\" segment, as \"{normalized}\"");
        }

        if (normalized is null)
        {
            return;
        }

        if (ArchivePaths.Normalize(normalized) != normalized)
        {
            throw new FuzzFindingException($"ArchivePaths.Normalize(\"{name}\") = \"{normalized}\" is not canonical");
        }

        if (normalized.StartsWith('/') || normalized.Split('/').Any(s => s is "" or "." or ".."))
        {
            throw new FuzzFindingException($"ArchivePaths.Normalize(\"{name}\") = \"{normalized}\" has an absolute, empty, \".\" or \"..\" segment");
        }

        var full = Path.GetFullPath(Path.Combine(Root, normalized));
        if (!full.StartsWith(Root + "/", StringComparison.Ordinal))
        {
            throw new FuzzFindingException($"entry \"{name}\" resolves to {full}, outside {Root}");
        }
    }

    private static void CheckLink(string name, string link)
    {
        if (ArchivePaths.Normalize(name) is not { } entry || !ArchivePaths.IsContainedLinkTarget(entry, link))
        {
            return;
        }

        var directory = Path.GetDirectoryName(Path.Combine(Root, entry))!;
        var full = Path.GetFullPath(Path.Combine(directory, link));
        if (full != Root && !full.StartsWith(Root + "/", StringComparison.Ordinal))
        {
            throw new FuzzFindingException($"symlink \"{entry}\" -> \"{link}\" was accepted but resolves to {full}, outside {Root}");
        }
    }
}
