using System.Globalization;
using System.Text;

namespace Mesh.Contracts.Security;

/// <summary>One line of a static token file: the secret, who it names, and the groups (Mesh's roles) it carries.</summary>
public sealed record StaticToken(string Token, string User, string Uid, IReadOnlyList<string> Groups);

/// <summary>
/// Kubernetes' static token file (kube-apiserver --token-auth-file): one CSV line per token,
/// <c>token,user,uid,"group1,group2"</c>, the groups column optional. Blank lines and lines starting with '#' are
/// skipped. The control plane reads it; the lab appends node tokens to it.
/// </summary>
public static class StaticTokenFile
{
    /// <summary>The tokens of <paramref name="text"/>, or the first problem, naming its line.</summary>
    /// <exception cref="FormatException">a line that is not <c>token,user,uid[,groups]</c>, or a token given twice</exception>
    public static IReadOnlyList<StaticToken> Parse(string text, string source = "token file")
    {
        var tokens = new List<StaticToken>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0 || line.TrimStart().StartsWith('#')) continue;
            var fields = SplitCsv(line, source, number);
            if (fields.Count is < 3 or > 4)
                throw new FormatException($"{source}:{number}: expected token,user,uid[,\"group1,group2\"], found {fields.Count} field(s)");
            var (token, user, uid) = (fields[0].Trim(), fields[1].Trim(), fields[2].Trim());
            if (token.Length == 0) throw new FormatException($"{source}:{number}: the token is empty");
            if (user.Length == 0) throw new FormatException($"{source}:{number}: the user is empty");
            if (!seen.Add(token)) throw new FormatException($"{source}:{number}: this token is already given to another line");
            var groups = fields.Count == 4
                ? fields[3].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : [];
            tokens.Add(new StaticToken(token, user, uid, groups));
        }
        return tokens;
    }

    /// <summary>The line that gives <paramref name="token"/> to <paramref name="user"/> with <paramref name="groups"/>.</summary>
    public static string Line(string token, string user, string uid, IEnumerable<string> groups) =>
        string.Create(CultureInfo.InvariantCulture, $"{token},{user},{uid},\"{string.Join(',', groups)}\"\n");

    /// <summary>A fresh random token: 32 bytes, hex (safe in a CSV field, a header and a shell variable).</summary>
    public static string NewToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    private static List<string> SplitCsv(string line, string source, int number)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c != '"') field.Append(c);
                else if (i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (c == '"' && field.ToString().Trim().Length == 0) { field.Clear(); quoted = true; }
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        if (quoted) throw new FormatException($"{source}:{number}: a quoted field is not closed");
        fields.Add(field.ToString());
        return fields;
    }
}
