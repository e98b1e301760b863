using System.Text.RegularExpressions;

namespace Mesh.Lab;

/// <summary>
/// Label edits as kubectl writes them: "k=v,k2=v2" sets, "k-" removes. Keys may carry a prefix ("app.io/tier").
/// </summary>
public sealed partial record LabelChanges(IReadOnlyDictionary<string, string> Set, IReadOnlyList<string> Remove)
{
    public static LabelChanges Parse(string? text, bool allowRemovals = true)
    {
        var set = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var remove = new List<string>();
        foreach (var raw in (text ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = raw.IndexOf('=');
            if (eq < 0 && allowRemovals && raw.EndsWith('-') && KeyPattern().IsMatch(raw[..^1]))
            {
                remove.Add(raw[..^1]);
                continue;
            }
            if (eq <= 0 || !KeyPattern().IsMatch(raw[..eq]) || !ValuePattern().IsMatch(raw[(eq + 1)..]))
                throw new LabException($"invalid label '{raw}': write key=value{(allowRemovals ? " (or key- to remove it)" : "")}, e.g. app=frontend,tier=web");
            set[raw[..eq]] = raw[(eq + 1)..];
        }
        return new LabelChanges(set, remove);
    }

    public static SortedDictionary<string, string> ParseLabels(string? text) =>
        new(Parse(text, allowRemovals: false).Set.ToDictionary(), StringComparer.Ordinal);

    public bool IsEmpty => Set.Count == 0 && Remove.Count == 0;

    public void ApplyTo(IDictionary<string, string> labels)
    {
        foreach (var key in Remove) labels.Remove(key);
        foreach (var (key, value) in Set) labels[key] = value;
    }

    public static string Format(IReadOnlyDictionary<string, string> labels) =>
        labels.Count == 0 ? "-" : string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

    [GeneratedRegex(@"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")]
    private static partial Regex KeyPattern();

    [GeneratedRegex(@"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")]
    private static partial Regex ValuePattern();
}
