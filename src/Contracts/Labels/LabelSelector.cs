using System.Collections.Immutable;

namespace Mesh.Contracts.Labels;

public enum SelectorOperator { In, NotIn, Exists, DoesNotExist }

/// <summary>
/// A key of a selector: <c>k8s:app</c> matches only labels of source k8s, a bare <c>app</c> (same as
/// <c>any:app</c>) matches the key from any source.
/// </summary>
public readonly record struct SelectorKey(string Source, string Key) : IComparable<SelectorKey>
{
    public static SelectorKey Parse(string text)
    {
        var (source, key) = Label.SplitSource(text, Label.SourceAny);
        return new SelectorKey(source, key);
    }

    public int CompareTo(SelectorKey other)
    {
        var bySource = string.CompareOrdinal(Source, other.Source);
        return bySource != 0 ? bySource : string.CompareOrdinal(Key, other.Key);
    }

    public IEnumerable<Label> In(LabelSet labels) => labels.WithKey(Source, Key);

    /// <summary>Always with its source (<c>any:app</c>), so both spellings of one selector serialize alike.</summary>
    public override string ToString() => $"{Source}:{Key}";
}

/// <summary>One of a selector's matchExpressions. In/NotIn carry values; Exists/DoesNotExist carry none.</summary>
public sealed record SelectorRequirement(SelectorKey Key, SelectorOperator Operator, IReadOnlyList<string> Values)
{
    public bool Matches(LabelSet labels) => Operator switch
    {
        SelectorOperator.In => Key.In(labels).Any(l => Values.Contains(l.Value, StringComparer.Ordinal)),
        // Kubernetes semantics: a missing label satisfies NotIn.
        SelectorOperator.NotIn => !Key.In(labels).Any(l => Values.Contains(l.Value, StringComparer.Ordinal)),
        SelectorOperator.Exists => Key.In(labels).Any(),
        SelectorOperator.DoesNotExist => !Key.In(labels).Any(),
        _ => false,
    };

    public override string ToString() => Operator switch
    {
        SelectorOperator.Exists => $"{Key}",
        SelectorOperator.DoesNotExist => $"!{Key}",
        _ => $"{Key} {(Operator == SelectorOperator.In ? "in" : "notin")} ({string.Join(",", Values)})",
    };
}

/// <summary>
/// A Kubernetes label selector with Cilium's sources: every matchLabels pair and every matchExpression must
/// hold. The empty selector matches every label set. Held in canonical order (keys sorted, values sorted and
/// distinct) so that equal selectors compare, print and hash alike.
/// </summary>
public sealed class LabelSelector : IEquatable<LabelSelector>
{
    public static readonly LabelSelector All = new([], []);

    public LabelSelector(IEnumerable<KeyValuePair<SelectorKey, string>> matchLabels, IEnumerable<SelectorRequirement> matchExpressions)
    {
        MatchLabels = matchLabels.OrderBy(kv => kv.Key).ThenBy(kv => kv.Value, StringComparer.Ordinal).ToImmutableArray();
        MatchExpressions = matchExpressions
            .Select(e => e with { Values = e.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToImmutableArray() })
            .OrderBy(e => e.Key).ThenBy(e => e.Operator).ThenBy(e => string.Join("\n", e.Values), StringComparer.Ordinal)
            .ToImmutableArray();
        Canonical = string.Join(", ", MatchLabels.Select(kv => $"{kv.Key}={kv.Value}").Concat(MatchExpressions.Select(e => e.ToString())));
    }

    /// <summary>Convenience for code and tests: keys as written in a policy (<c>k8s:app</c> or <c>app</c>).</summary>
    public static LabelSelector Of(IReadOnlyDictionary<string, string> matchLabels, params SelectorRequirement[] matchExpressions) =>
        new(matchLabels.Select(kv => KeyValuePair.Create(SelectorKey.Parse(kv.Key), kv.Value)), matchExpressions);

    public IReadOnlyList<KeyValuePair<SelectorKey, string>> MatchLabels { get; }
    public IReadOnlyList<SelectorRequirement> MatchExpressions { get; }
    public bool IsEmpty => MatchLabels.Count == 0 && MatchExpressions.Count == 0;

    private string Canonical { get; }

    public bool Matches(LabelSet labels) =>
        MatchLabels.All(kv => kv.Key.In(labels).Any(l => l.Value == kv.Value))
        && MatchExpressions.All(e => e.Matches(labels));

    /// <summary>
    /// Scopes the selector to one namespace (what Cilium does to the selectors of a namespaced policy), unless it
    /// already says which namespace it means.
    /// </summary>
    public LabelSelector WithNamespace(string ns)
    {
        if (ConstrainsNamespace) return this;
        var scoped = KeyValuePair.Create(new SelectorKey(Label.SourceK8s, LabelSet.PodNamespaceKey), ns);
        return new LabelSelector(MatchLabels.Append(scoped), MatchExpressions);
    }

    private bool ConstrainsNamespace =>
        MatchLabels.Any(kv => IsNamespaceKey(kv.Key)) || MatchExpressions.Any(e => IsNamespaceKey(e.Key));

    private static bool IsNamespaceKey(SelectorKey key) =>
        key.Key == LabelSet.PodNamespaceKey && key.Source is Label.SourceK8s or Label.SourceAny;

    public bool Equals(LabelSelector? other) => other is not null && Canonical == other.Canonical;
    public override bool Equals(object? obj) => obj is LabelSelector other && Equals(other);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Canonical);

    /// <summary>Kubernetes' selector syntax: <c>k8s:app=web, any:tier in (a,b), !k8s:debug</c>; empty for match-all.</summary>
    public override string ToString() => Canonical;
}
