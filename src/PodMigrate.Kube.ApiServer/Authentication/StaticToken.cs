using System.Text;
using PodMigrate.Core.Errors;

namespace PodMigrate.Kube.ApiServer.Authentication;

/// <summary>One bearer token and the user it stands for: a line of kube-apiserver's --token-auth-file.</summary>
public sealed record StaticToken(string Token, UserInfo User)
{
    /// <summary>
    /// Parses a token file as kube-apiserver reads one: CSV lines "token,user,uid[,\"group1,group2\"]" (a quoted field
    /// may hold commas; "" is a quote); blank lines and lines starting with '#' are skipped; a duplicate token is an error.
    /// </summary>
    public static IReadOnlyList<StaticToken> ParseFile(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<StaticToken>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lineNumber = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNumber++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#'))
            {
                continue;
            }
            var fields = SplitCsv(line, source, lineNumber);
            if (fields.Count < 3 || fields[0].Length == 0 || fields[1].Length == 0)
            {
                throw PodMigrateException.InvalidArgument($"{source}:{lineNumber}: a token line needs at least token,user,uid");
            }
            if (!seen.Add(fields[0]))
            {
                throw PodMigrateException.InvalidArgument($"{source}:{lineNumber}: duplicate token");
            }
            var groups = fields.Count > 3
                ? fields[3].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                : [];
            tokens.Add(new StaticToken(fields[0], new UserInfo(fields[1], fields[2], groups)));
        }
        return tokens;
    }

    /// <summary>The file line for this token (what <see cref="ParseFile"/> reads back).</summary>
    public string ToFileLine()
    {
        static string Quote(string value) => value.Contains(',', StringComparison.Ordinal) || value.Contains('"', StringComparison.Ordinal)
            ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\""
            : value;
        var line = $"{Quote(Token)},{Quote(User.Name)},{Quote(User.Uid)}";
        return User.Groups.Count == 0 ? line : $"{line},{Quote(string.Join(',', User.Groups))}";
    }

    /// <summary>Not in logs or exceptions: the token is a credential.</summary>
    public override string ToString() => $"token for {User.Name}";

    private static List<string> SplitCsv(string line, string source, int lineNumber)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"' && field.Length == 0)
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString().Trim());
                field.Clear();
            }
            else
            {
                field.Append(c);
            }
        }
        if (quoted)
        {
            throw PodMigrateException.InvalidArgument($"{source}:{lineNumber}: unterminated quoted field");
        }
        fields.Add(field.ToString().Trim());
        return fields;
    }
}
