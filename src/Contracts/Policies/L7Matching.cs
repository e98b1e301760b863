using System.Text.RegularExpressions;

namespace Mesh.Contracts.Policies;

/// <summary>
/// Cilium's name matching for <c>rules.dns</c> and <c>toFQDNs</c>, as the DNS proxy applies it to the names pods ask for.
/// </summary>
public static class DnsNames
{
    /// <summary>A name as it is compared: lowercase, without the root dot.</summary>
    public static string Normalize(string name) => name.ToLowerInvariant().TrimEnd('.');

    /// <summary>
    /// Whether <paramref name="name"/> matches: <c>matchName</c> exactly; <c>matchPattern</c> with <c>*</c> standing for
    /// any characters within one label (so <c>*.example.com</c> matches <c>api.example.com</c>, but neither
    /// <c>example.com</c> nor <c>a.b.example.com</c>), and a lone <c>*</c> for every name.
    /// </summary>
    public static bool Matches(this DnsMatch match, string name)
    {
        var normalized = Normalize(name);
        if (match.MatchName is { } exact) return exact == normalized;
        var pattern = match.MatchPattern!;
        if (pattern == "*") return true;
        var patternLabels = pattern.Split('.');
        var nameLabels = normalized.Split('.');
        if (patternLabels.Length != nameLabels.Length) return false;
        for (var i = 0; i < nameLabels.Length; i++)
            if (!LabelMatches(patternLabels[i], nameLabels[i])) return false;
        return true;
    }

    /// <summary>Glob of one label, <c>*</c> = any run of characters: linear, keeping only the last star to return to.</summary>
    private static bool LabelMatches(string pattern, string label)
    {
        int p = 0, l = 0, star = -1, resume = 0;
        while (l < label.Length)
        {
            if (p < pattern.Length && pattern[p] == '*') { star = p++; resume = l; }
            else if (p < pattern.Length && pattern[p] == label[l]) { p++; l++; }
            else if (star >= 0) { p = star + 1; l = ++resume; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}

/// <summary>One HTTP request as the L7 proxy judges it. <see cref="Path"/> is the request target (the path with its query).</summary>
public sealed record HttpRequestFacts(string Method, string Path, string Host, IReadOnlyList<KeyValuePair<string, string>> Headers);

/// <summary>
/// The <c>rules.http</c> of one allowed port and peer, compiled once: a request is allowed when any rule matches it
/// (no rules: every request). A rule matches when every field it gives does, as Cilium judges them: method, path and
/// host are regular expressions that must match the whole value (host ignoring case, as DNS does); a header given as
/// <c>Name</c> must be present, one given as <c>Name: value</c> must have that exact value. The expressions run
/// without backtracking, so a hostile request costs time linear in its length.
/// </summary>
public sealed class HttpRequestRules
{
    private readonly Compiled[] _rules;

    public HttpRequestRules(IEnumerable<HttpRule> rules) => _rules = rules.Select(Compile).ToArray();

    public bool Allows(HttpRequestFacts request) => _rules.Length == 0 || _rules.Any(r => r.Matches(request));

    /// <summary>The index of the first rule that allows <paramref name="request"/>; -1 when none does (or there are no rules).</summary>
    public int FirstMatch(HttpRequestFacts request) => Array.FindIndex(_rules, r => r.Matches(request));

    private sealed record Compiled(Regex? Method, Regex? Path, Regex? Host, (string Name, string? Value)[] Headers)
    {
        public bool Matches(HttpRequestFacts request) =>
            (Method is null || Method.IsMatch(request.Method)) &&
            (Path is null || Path.IsMatch(request.Path)) &&
            (Host is null || Host.IsMatch(request.Host)) &&
            Headers.All(h => request.Headers.Any(r => string.Equals(r.Key, h.Name, StringComparison.OrdinalIgnoreCase) && (h.Value is null || r.Value == h.Value)));
    }

    private static Compiled Compile(HttpRule rule) => new(
        Anchored(rule.Method, RegexOptions.None), Anchored(rule.Path, RegexOptions.None), Anchored(rule.Host, RegexOptions.IgnoreCase),
        rule.Headers.Select(Header).ToArray());

    private static Regex? Anchored(string? expression, RegexOptions options) => expression is null ? null
        : new Regex($"^(?:{expression})$", options | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);

    /// <summary>
    /// Why <paramref name="expression"/> cannot be a method, path or host rule, or null when it can: the policy parser
    /// asks, so a policy is refused when it is applied rather than when its first request arrives. Constructs that need
    /// backtracking (backreferences, lookarounds) are refused.
    /// </summary>
    public static string? ProblemWith(string expression)
    {
        try
        {
            // As written (the error's offsets are then the user's), and as it runs.
            _ = new Regex(expression, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
            _ = Anchored(expression, RegexOptions.None);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            return e.Message;
        }
    }

    private static (string, string?) Header(string header)
    {
        var colon = header.IndexOf(':');
        return colon < 0 ? (header.Trim(), null) : (header[..colon].Trim(), header[(colon + 1)..].Trim());
    }
}
