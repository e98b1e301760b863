using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// One matchLabels pair of a selector, by key and value only: a label set can only match a selector that has
/// one if it carries that key and value (from some source), so it narrows both directions of a lookup.
/// </summary>
internal readonly record struct LabelAnchor(string Key, string Value)
{
    public static LabelAnchor? Of(IEnumerable<LabelSelector> conjunction)
    {
        foreach (var selector in conjunction)
            foreach (var (key, value) in selector.MatchLabels) return new LabelAnchor(key.Key, value);
        return null;
    }

    public static IEnumerable<LabelAnchor> Of(LabelSet labels) => labels.Select(l => new LabelAnchor(l.Key, l.Value));
}

/// <summary>The identity table by label: which identities carry a key and value.</summary>
internal sealed class LabelIndex
{
    private readonly Dictionary<LabelAnchor, HashSet<uint>> _byLabel = [];

    public void Add(uint identity, LabelSet labels)
    {
        foreach (var anchor in LabelAnchor.Of(labels))
        {
            if (!_byLabel.TryGetValue(anchor, out var ids)) _byLabel[anchor] = ids = [];
            ids.Add(identity);
        }
    }

    public void Remove(uint identity, LabelSet labels)
    {
        foreach (var anchor in LabelAnchor.Of(labels))
        {
            if (_byLabel.TryGetValue(anchor, out var ids) && ids.Remove(identity) && ids.Count == 0) _byLabel.Remove(anchor);
        }
    }

    /// <summary>Identities that may match every selector of the conjunction; null = no anchor, every identity may.</summary>
    public IEnumerable<uint>? Candidates(IReadOnlyList<LabelSelector> conjunction)
    {
        IEnumerable<uint>? best = null;
        var bestCount = int.MaxValue;
        foreach (var selector in conjunction)
        {
            foreach (var (key, value) in selector.MatchLabels)
            {
                var ids = _byLabel.GetValueOrDefault(new LabelAnchor(key.Key, value));
                if (ids is null) return [];
                if (ids.Count < bestCount) (best, bestCount) = (ids, ids.Count);
            }
        }
        return best;
    }
}

/// <summary>
/// Cached selections by anchor, for the other direction: which selections a new identity's labels may satisfy.
/// A selection without matchLabels may match anything and is always a candidate.
/// </summary>
internal sealed class SelectionIndex<T> where T : class
{
    private readonly Dictionary<LabelAnchor, HashSet<T>> _anchored = [];
    private readonly HashSet<T> _unanchored = [];

    public void Add(T selection, IEnumerable<LabelSelector> conjunction)
    {
        if (LabelAnchor.Of(conjunction) is not { } anchor) { _unanchored.Add(selection); return; }
        if (!_anchored.TryGetValue(anchor, out var set)) _anchored[anchor] = set = [];
        set.Add(selection);
    }

    public void Remove(T selection, IEnumerable<LabelSelector> conjunction)
    {
        if (LabelAnchor.Of(conjunction) is not { } anchor) { _unanchored.Remove(selection); return; }
        if (_anchored.TryGetValue(anchor, out var set) && set.Remove(selection) && set.Count == 0) _anchored.Remove(anchor);
    }

    public HashSet<T> Candidates(LabelSet labels)
    {
        var candidates = new HashSet<T>(_unanchored);
        foreach (var anchor in LabelAnchor.Of(labels))
            if (_anchored.TryGetValue(anchor, out var set)) candidates.UnionWith(set);
        return candidates;
    }
}

/// <summary>A rule set of a policy, by the policy's key (namespace/name) and its index among the policy's specs.</summary>
internal sealed record SpecRef(string Policy, int Index);

/// <summary>An endpoint selector of policies (scoped to their namespace) and the identities it selects.</summary>
internal sealed class SubjectSelection(LabelSelector selector)
{
    public LabelSelector Selector { get; } = selector;
    public HashSet<SpecRef> Specs { get; } = [];
    public HashSet<uint> Matched { get; } = [];
}

/// <summary>A peer selector with the fromRequires/toRequires that narrow it: the cache key of a peer selection.</summary>
internal readonly record struct PeerKey(LabelSelector Selector, string Requires);

/// <summary>
/// The identities a peer selector admits, and the identities whose compiled policy used it: when an identity
/// appears that the selector matches, exactly those are recompiled.
/// </summary>
internal sealed class PeerSelection(PeerKey key, LabelSelector selector, LabelSelector[] requires)
{
    private uint[]? _sorted;

    public PeerKey Key { get; } = key;
    public LabelSelector Selector { get; } = selector;
    public LabelSelector[] Requires { get; } = requires;
    public IEnumerable<LabelSelector> Conjunction => Requires.Prepend(Selector);
    public HashSet<uint> Matched { get; } = [];
    public HashSet<uint> Users { get; } = [];

    public bool Matches(LabelSet labels)
    {
        if (!Selector.Matches(labels)) return false;
        foreach (var r in Requires) if (!r.Matches(labels)) return false;
        return true;
    }

    /// <summary>The matched identities and their address groups (which carry their labels), sorted.</summary>
    /// <param name="addressGroups">A label identity's address groups; null when no identity has any.</param>
    public uint[] Peers(Func<uint, uint[]>? addressGroups)
    {
        if (_sorted is { } sorted) return sorted;
        if (addressGroups is null) return _sorted = Matched.Order().ToArray();
        var peers = new List<uint>(Matched.Count);
        foreach (var id in Matched)
        {
            peers.Add(id);
            peers.AddRange(addressGroups(id));
        }
        peers.Sort();
        return _sorted = peers.ToArray();
    }

    public void Changed() => _sorted = null;
}
