using Mesh.Contracts.Hubble.Flows;

namespace Mesh.Contracts.Hubble;

/// <summary>
/// A label selector in the Kubernetes text form Hubble's --label filters use: comma-separated requirements, all of
/// which must hold: <c>key=value</c> (or <c>==</c>), <c>key!=value</c>, <c>key</c>, <c>!key</c>,
/// <c>key in (a,b)</c>, <c>key notin (a,b)</c>. Flow labels are <c>source:key=value</c>; a key without a source
/// (or with <c>any:</c>) matches a label of that key from any source.
/// </summary>
public sealed class LabelSelectorText
{
    private enum Operator { Equals, NotEquals, Exists, DoesNotExist, In, NotIn }

    private sealed record Requirement(string? Source, string Key, Operator Op, string[] Values);

    private readonly Requirement[] _requirements;

    private LabelSelectorText(Requirement[] requirements) => _requirements = requirements;

    public static LabelSelectorText Parse(string text, string field)
    {
        var requirements = SplitTopLevel(text).Select(part => ParseRequirement(part.Trim(), text, field)).ToArray();
        return requirements.Length == 0 ? throw new FlowFilterException($"{field}: \"{text}\" is an empty selector") : new LabelSelectorText(requirements);
    }

    public bool Matches(Endpoint? endpoint)
    {
        var labels = (endpoint?.Labels ?? []).Select(ParseLabel).ToArray();
        return _requirements.All(r =>
        {
            var values = labels.Where(l => l.Key == r.Key && (r.Source is null || l.Source == r.Source)).Select(l => l.Value).ToArray();
            return r.Op switch
            {
                Operator.Exists => values.Length > 0,
                Operator.DoesNotExist => values.Length == 0,
                Operator.Equals or Operator.In => values.Any(v => r.Values.Contains(v)),
                _ => !values.Any(v => r.Values.Contains(v)),
            };
        });
    }

    private static (string Source, string Key, string Value) ParseLabel(string label)
    {
        var colon = label.IndexOf(':', StringComparison.Ordinal);
        var source = colon < 0 ? "" : label[..colon];
        var rest = colon < 0 ? label : label[(colon + 1)..];
        var equals = rest.IndexOf('=', StringComparison.Ordinal);
        return equals < 0 ? (source, rest, "") : (source, rest[..equals], rest[(equals + 1)..]);
    }

    private static Requirement ParseRequirement(string part, string text, string field)
    {
        FlowFilterException Bad(string why) => new($"{field}: \"{text}\" is not a label selector ({why})");
        if (part.Length == 0) throw Bad("an empty requirement");
        if (part.StartsWith('!')) return Key(part[1..].Trim(), Operator.DoesNotExist, []);
        foreach (var (word, op) in new[] { (" notin ", Operator.NotIn), (" in ", Operator.In) })
        {
            var at = part.IndexOf(word, StringComparison.Ordinal);
            if (at < 0) continue;
            var set = part[(at + word.Length)..].Trim();
            if (!set.StartsWith('(') || !set.EndsWith(')')) throw Bad($"'{word.Trim()}' needs a parenthesised list");
            return Key(part[..at].Trim(), op, set[1..^1].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        }
        foreach (var (symbol, op) in new[] { ("!=", Operator.NotEquals), ("==", Operator.Equals), ("=", Operator.Equals) })
        {
            var at = part.IndexOf(symbol, StringComparison.Ordinal);
            if (at >= 0) return Key(part[..at].Trim(), op, [part[(at + symbol.Length)..].Trim()]);
        }
        return Key(part, Operator.Exists, []);

        Requirement Key(string key, Operator op, string[] values)
        {
            if (key.Length == 0) throw Bad("a requirement without a key");
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            var source = colon < 0 ? null : key[..colon];
            return new Requirement(source is "any" ? null : source, colon < 0 ? key : key[(colon + 1)..], op, values);
        }
    }

    private static IEnumerable<string> SplitTopLevel(string text)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '(') depth++;
            else if (text[i] == ')') depth--;
            else if (text[i] == ',' && depth == 0)
            {
                yield return text[start..i];
                start = i + 1;
            }
        }
        if (start < text.Length) yield return text[start..];
    }
}
