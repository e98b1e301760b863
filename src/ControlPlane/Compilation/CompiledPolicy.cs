namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The policy of one local identity before it is placed on a node: entries sorted by key, each with the rule that
/// decided it (not yet a node's rule index), the identity's rules in order, and a digest of all of it. The same
/// object serves every node the identity is local on (with the same node-local CIDR identities), so it is
/// immutable.
/// </summary>
internal sealed class CompiledPolicy
{
    private CompiledPolicy(uint identity, bool ingressEnforced, bool egressEnforced, PolicyEntryKey[] keys, Candidate[] values)
    {
        Identity = identity;
        IngressEnforced = ingressEnforced;
        EgressEnforced = egressEnforced;
        Keys = keys;
        Values = values;
        // Entries of one rule share its reference object: distinct by reference first (cheap), then by value.
        var distinct = new HashSet<RuleReference>(ReferenceEqualityComparer.Instance);
        foreach (var v in values) distinct.Add(v.Rule);
        var rules = distinct.ToList();
        rules.Sort();
        Rules = Dedupe(rules);
        RuleIndexes = new int[values.Length];
        var byObject = new Dictionary<RuleReference, int>(distinct.Count, ReferenceEqualityComparer.Instance);
        foreach (var r in distinct) byObject[r] = Array.BinarySearch(Rules, r);
        for (var i = 0; i < values.Length; i++) RuleIndexes[i] = byObject[values[i].Rule];
        Digest = ContentDigest.Policy(this);
    }

    private CompiledPolicy(uint identity, bool ingressEnforced, bool egressEnforced, PolicyEntryKey[] keys, Candidate[] values,
        RuleReference[] rules, int[] ruleIndexes)
    {
        Identity = identity;
        IngressEnforced = ingressEnforced;
        EgressEnforced = egressEnforced;
        Keys = keys;
        Values = values;
        Rules = rules;
        RuleIndexes = ruleIndexes;
        Digest = ContentDigest.Policy(this);
    }

    private CompiledPolicy(CompiledPolicy same, uint identity)
    {
        Identity = identity;
        IngressEnforced = same.IngressEnforced;
        EgressEnforced = same.EgressEnforced;
        Keys = same.Keys;
        Values = same.Values;
        Rules = same.Rules;
        RuleIndexes = same.RuleIndexes;
        Digest = same.Digest;
    }

    /// <summary>The same entries for another identity selected by the same specs (the digest does not name the identity).</summary>
    public CompiledPolicy For(uint identity) => identity == Identity ? this : new CompiledPolicy(this, identity);

    public uint Identity { get; }
    public bool IngressEnforced { get; }
    public bool EgressEnforced { get; }
    public PolicyEntryKey[] Keys { get; }
    public Candidate[] Values { get; }
    /// <summary>The distinct rules its entries name, in rule order.</summary>
    public RuleReference[] Rules { get; }
    /// <summary>Per entry, the position of its rule in <see cref="Rules"/>.</summary>
    public int[] RuleIndexes { get; }
    /// <summary>Hex SHA-256 of the enforcement flags, rule texts and entries (see <see cref="ContentDigest.Policy"/>).</summary>
    public string Digest { get; }
    public int Count => Keys.Length;

    public static CompiledPolicy From(uint identity, bool ingressEnforced, bool egressEnforced, Dictionary<PolicyEntryKey, Candidate> entries)
    {
        var keys = new PolicyEntryKey[entries.Count];
        var values = new Candidate[entries.Count];
        var i = 0;
        foreach (var (key, value) in entries) { keys[i] = key; values[i] = value; i++; }
        Array.Sort(keys, values);
        return new CompiledPolicy(identity, ingressEnforced, egressEnforced, keys, values);
    }

    /// <summary>For entries already sorted by key (a delta applied to a snapshot).</summary>
    public static CompiledPolicy FromSorted(uint identity, bool ingressEnforced, bool egressEnforced, PolicyEntryKey[] keys, Candidate[] values) =>
        new(identity, ingressEnforced, egressEnforced, keys, values);

    /// <summary>This policy with entries for keys it does not have yet (peers it never named).</summary>
    public CompiledPolicy With(Dictionary<PolicyEntryKey, Candidate> added)
    {
        if (added.Count == 0) return this;
        var newKeys = new PolicyEntryKey[added.Count];
        var newValues = new Candidate[added.Count];
        var n = 0;
        foreach (var (key, value) in added) { newKeys[n] = key; newValues[n] = value; n++; }
        Array.Sort(newKeys, newValues);
        // Merge two sorted runs; the keys are disjoint (the peers are new).
        var keys = new PolicyEntryKey[Count + added.Count];
        var values = new Candidate[keys.Length];
        // Usually the new peers come through rules that already decide entries here: the rule list stays and
        // only the new entries need their rule's position.
        var newIndexes = new int[newValues.Length];
        for (var m = 0; m < newValues.Length; m++)
        {
            newIndexes[m] = IndexOfRule(newValues[m].Rule);
            if (newIndexes[m] < 0) { newIndexes = null; break; }
        }
        var ruleIndexes = newIndexes is null ? null : new int[keys.Length];
        var (i, j) = (0, 0);
        for (var k = 0; k < keys.Length; k++)
        {
            if (j >= newKeys.Length || (i < Count && Keys[i].CompareTo(newKeys[j]) < 0))
            {
                if (ruleIndexes is not null) ruleIndexes[k] = RuleIndexes[i];
                keys[k] = Keys[i];
                values[k] = Values[i++];
            }
            else
            {
                if (ruleIndexes is not null) ruleIndexes[k] = newIndexes![j];
                keys[k] = newKeys[j];
                values[k] = newValues[j++];
            }
        }
        return ruleIndexes is null
            ? new CompiledPolicy(Identity, IngressEnforced, EgressEnforced, keys, values)
            : new CompiledPolicy(Identity, IngressEnforced, EgressEnforced, keys, values, Rules, ruleIndexes);
    }

    /// <summary>The position of a rule (by value) in <see cref="Rules"/>, or -1.</summary>
    private int IndexOfRule(RuleReference rule)
    {
        var at = Array.BinarySearch(Rules, rule);
        return at >= 0 && Rules[at].Equals(rule) ? at : -1;
    }

    public bool SameContent(CompiledPolicy other) => ReferenceEquals(this, other) || Digest == other.Digest;

    private static RuleReference[] Dedupe(List<RuleReference> sorted)
    {
        var distinct = new List<RuleReference>(Math.Min(sorted.Count, 16));
        foreach (var r in sorted)
            if (distinct.Count == 0 || !distinct[^1].Equals(r)) distinct.Add(r);
        return distinct.ToArray();
    }
}
