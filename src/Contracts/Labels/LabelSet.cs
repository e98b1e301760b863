using System.Collections;
using System.Collections.Immutable;

namespace Mesh.Contracts.Labels;

/// <summary>
/// The labels that make a security identity: immutable, sorted by (source, key), at most one value per key of a
/// source, and without the excluded labels. Two sets are equal when their canonical <see cref="Key"/> is, and the
/// identity of a set is the one the log allocated for that key.
/// </summary>
public sealed class LabelSet : IEquatable<LabelSet>, IReadOnlyList<Label>
{
    /// <summary>
    /// Label keys that vary between replicas of one workload (or name a single pod) and would give every pod its
    /// own identity; they never become part of a label set, whatever their source.
    /// </summary>
    public static readonly IReadOnlySet<string> ExcludedKeys = ImmutableHashSet.Create(StringComparer.Ordinal,
        "pod-template-hash",
        "pod-template-generation",
        "controller-revision-hash",
        "controller-uid",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-completion-index");

    /// <summary>The pod's namespace, added to every pod's labels so policies can be scoped by namespace.</summary>
    public const string PodNamespaceKey = "io.kubernetes.pod.namespace";
    /// <summary>Prefix of the namespace's own labels copied onto its pods (Cilium's spelling).</summary>
    public const string NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels.";

    public static readonly LabelSet Empty = new(ImmutableArray<Label>.Empty);

    private readonly ImmutableArray<Label> labels;

    private LabelSet(ImmutableArray<Label> sorted)
    {
        labels = sorted;
        Key = string.Join(';', sorted.Select(l => l.ToString()));
    }

    /// <summary>Sorted <c>source:key=value</c> pairs joined with ';'. The identity allocator's key.</summary>
    public string Key { get; }

    public int Count => labels.Length;
    public Label this[int index] => labels[index];

    /// <summary>Builds a set; excluded labels are dropped. Two different values for one key of a source are refused.</summary>
    public static LabelSet From(IEnumerable<Label> labels)
    {
        var sorted = labels.Where(l => !ExcludedKeys.Contains(l.Key)).Distinct().Order().ToImmutableArray();
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Source == sorted[i - 1].Source && sorted[i].Key == sorted[i - 1].Key)
                throw new ArgumentException($"label {sorted[i].Source}:{sorted[i].Key} has two values: \"{sorted[i - 1].Value}\" and \"{sorted[i].Value}\"", nameof(labels));
        }
        return sorted.IsEmpty ? Empty : new LabelSet(sorted);
    }

    public static LabelSet From(params Label[] labels) => From((IEnumerable<Label>)labels);

    /// <summary>Parses labels written as <c>source:key=value</c>; a label without a source gets <paramref name="defaultSource"/>.</summary>
    public static LabelSet Parse(IEnumerable<string> labels, string defaultSource = Label.SourceK8s) =>
        From(labels.Select(l => Label.Parse(l, defaultSource)));

    /// <summary>Parses a canonical <see cref="Key"/> back into its set.</summary>
    public static LabelSet ParseKey(string key) =>
        key.Length == 0 ? Empty : Parse(key.Split(';'));

    /// <summary>
    /// The labels Cilium derives for a pod: its own labels, its namespace, and its namespace's labels, all from
    /// source k8s. The namespace label always wins over a pod label of the same key.
    /// </summary>
    public static LabelSet ForPod(string ns, IReadOnlyDictionary<string, string> podLabels,
        IReadOnlyDictionary<string, string> namespaceLabels)
    {
        ArgumentException.ThrowIfNullOrEmpty(ns);
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in podLabels) all[key] = value;
        foreach (var (key, value) in namespaceLabels) all[NamespaceLabelsPrefix + key] = value;
        all[PodNamespaceKey] = ns;
        return From(all.Select(kv => new Label(Label.SourceK8s, kv.Key, kv.Value)));
    }

    /// <summary>The value of <paramref name="key"/> from <paramref name="source"/>, or null.</summary>
    public string? ValueOf(string source, string key)
    {
        foreach (var label in labels)
        {
            if (label.Source == source && label.Key == key) return label.Value;
        }
        return null;
    }

    /// <summary>Every label with this key; with source <see cref="Label.SourceAny"/>, from all sources.</summary>
    public IEnumerable<Label> WithKey(string source, string key) =>
        labels.Where(l => l.Key == key && (source == Label.SourceAny || l.Source == source));

    public bool Equals(LabelSet? other) => other is not null && Key == other.Key;
    public override bool Equals(object? obj) => obj is LabelSet other && Equals(other);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Key);
    public static bool operator ==(LabelSet? a, LabelSet? b) => a?.Equals(b) ?? b is null;
    public static bool operator !=(LabelSet? a, LabelSet? b) => !(a == b);

    public IEnumerator<Label> GetEnumerator() => ((IEnumerable<Label>)labels).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public override string ToString() => Key;
}
