using System.Text.Json.Nodes;

namespace Mesh.Testing.Kubernetes;

/// <summary>
/// The labelSelector and fieldSelector query parameters, parsed as kube-apiserver parses them: terms joined by commas,
/// all of which must hold. Label terms: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k. Field terms: f=v, f==v, f!=v
/// on the fields the resource supports.
/// </summary>
internal sealed class Selectors
{
    private readonly List<Func<JsonObject, bool>> _terms = [];

    public static readonly Selectors Everything = new();

    public static Selectors Parse(ApiResource resource, string? labelSelector, string? fieldSelector)
    {
        var selectors = new Selectors();
        foreach (var term in SplitTerms(labelSelector)) selectors._terms.Add(LabelTerm(term));
        foreach (var term in SplitTerms(fieldSelector)) selectors._terms.Add(FieldTerm(resource, term));
        return selectors;
    }

    public bool Matches(JsonObject obj) => _terms.TrueForAll(t => t(obj));

    /// <summary>Commas inside "in (a,b)" belong to the term.</summary>
    private static IEnumerable<string> SplitTerms(string? selector)
    {
        if (string.IsNullOrWhiteSpace(selector)) yield break;
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= selector.Length; i++)
        {
            if (i == selector.Length || (selector[i] == ',' && depth == 0))
            {
                var term = selector[start..i].Trim();
                if (term.Length > 0) yield return term;
                start = i + 1;
            }
            else if (selector[i] == '(') depth++;
            else if (selector[i] == ')') depth--;
        }
    }

    private static Func<JsonObject, bool> LabelTerm(string term)
    {
        var set = SetTerm(term);
        if (set is not null) return set;
        if (term.StartsWith('!')) { var key = term[1..].Trim(); return o => Label(o, key) is null; }
        if (TrySplit(term, out var key2, out var value, out var negated)) return o => (Label(o, key2) == value) != negated;
        if (term.Any(c => c is ' ' or '(' or ')' or '<' or '>'))
            throw ApiStatus.BadRequest($"unable to parse requirement: {term}");
        return o => Label(o, term) is not null;
    }

    private static Func<JsonObject, bool>? SetTerm(string term)
    {
        var open = term.IndexOf('(');
        if (open < 0 || !term.EndsWith(')')) return null;
        var head = term[..open].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (head.Length != 2 || head[1] is not ("in" or "notin"))
            throw ApiStatus.BadRequest($"unable to parse requirement: {term}");
        var key = head[0];
        var values = term[(open + 1)..^1].Split(',').Select(v => v.Trim()).ToHashSet();
        return head[1] == "in"
            ? o => Label(o, key) is { } v && values.Contains(v)
            : o => Label(o, key) is not { } v || !values.Contains(v);
    }

    private static Func<JsonObject, bool> FieldTerm(ApiResource resource, string term)
    {
        if (!TrySplit(term, out var field, out var value, out var negated))
            throw ApiStatus.BadRequest($"invalid selector: '{term}'; can't understand '{term}'");
        if (field is not ("metadata.name" or "metadata.namespace") && !resource.FieldSelectors.Contains(field))
            throw ApiStatus.BadRequest($"field label not supported: {field}");
        return o => (FieldValue(o, field) == value) != negated;
    }

    private static bool TrySplit(string term, out string key, out string value, out bool negated)
    {
        foreach (var op in new[] { "!=", "==", "=" })
        {
            var at = term.IndexOf(op, StringComparison.Ordinal);
            if (at < 0) continue;
            (key, value, negated) = (term[..at].Trim(), term[(at + op.Length)..].Trim(), op == "!=");
            return true;
        }
        (key, value, negated) = ("", "", false);
        return false;
    }

    private static string? Label(JsonObject obj, string key) =>
        obj["metadata"]?["labels"]?[key]?.GetValue<string>();

    /// <summary>An absent field compares as the empty string, as the real field selectors do.</summary>
    private static string FieldValue(JsonObject obj, string path)
    {
        JsonNode? node = obj;
        foreach (var part in path.Split('.')) node = node is JsonObject o ? o[part] : null;
        return node switch
        {
            null => "",
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => node.ToJsonString(),
        };
    }
}
