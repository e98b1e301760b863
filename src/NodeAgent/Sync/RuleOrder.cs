using Mesh.Contracts.Policies;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// Rule order as the control plane numbers a node's rules: <see cref="RuleText"/>'s, the one type both sides read
/// rule texts with. Texts are parsed once each; two texts that read the same (they never do in one snapshot) keep
/// an order by their characters.
/// </summary>
internal sealed class RuleOrder : IComparer<string>
{
    public static readonly RuleOrder Instance = new();

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RuleText> _parsed = new(StringComparer.Ordinal);

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null || y is null) return x is null ? -1 : 1;
        var c = Parse(x).CompareTo(Parse(y));
        return c != 0 ? c : string.CompareOrdinal(x, y);
    }

    private RuleText Parse(string text) => _parsed.GetOrAdd(text, RuleText.Parse);
}
