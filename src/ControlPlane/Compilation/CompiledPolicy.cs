using Mesh.Contracts.Policies;
using Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The policy of one local identity before it is placed on a node: entries sorted by key, each with the position of
/// the rule that decided it in the identity's rules (not yet a node's rule index), those rules in order, and a
/// digest of all of it. The same
/// object serves every node the identity is local on (with the same node-local CIDR identities), so it is
/// immutable.
/// </summary>
internal sealed class CompiledPolicy
{
    private CompiledPolicy(uint identity, bool ingressEnforced, bool egressEnforced, PolicyEntryKey[] keys, EntryValue[] values, RuleReference[] rules,
        L7Policy[] l7)
    {
        Identity = identity;
        IngressEnforced = ingressEnforced;
        EgressEnforced = egressEnforced;
        Keys = keys;
        Values = values;
        Rules = rules;
        L7 = l7;
        Digest = ContentDigest.Policy(this);
    }

    private CompiledPolicy(CompiledPolicy same, uint identity, CompiledPolicy? audit)
    {
        Identity = identity;
        IngressEnforced = same.IngressEnforced;
        EgressEnforced = same.EgressEnforced;
        Keys = same.Keys;
        Values = same.Values;
        Rules = same.Rules;
        L7 = same.L7;
        Digest = same.Digest;
        Audit = audit;
    }

    /// <summary>The same entries for another identity selected by the same specs (the digest does not name the identity).</summary>
    public CompiledPolicy For(uint identity) =>
        identity == Identity ? this : new CompiledPolicy(this, identity, Audit?.For(identity | AgentProtocol.AuditLayer));

    /// <summary>This policy with <paramref name="audit"/> as its audit layer (null: none).</summary>
    public CompiledPolicy WithAudit(CompiledPolicy? audit) => ReferenceEquals(audit, Audit) ? this : new CompiledPolicy(this, Identity, audit);

    /// <summary>The identity, or for an audit layer the identity with <see cref="AgentProtocol.AuditLayer"/> set.</summary>
    public uint Identity { get; }

    /// <summary>
    /// The audit layer: the policy the identity would have if the policies in audit mode that select it were enforced
    /// too (keyed by <c>Identity | AuditLayer</c>); null while no audited policy selects it.
    /// </summary>
    public CompiledPolicy? Audit { get; }

    /// <summary>The enforced policy, then its audit layer if it has one: what a node holds for the identity.</summary>
    public IEnumerable<CompiledPolicy> Layers => Audit is { } audit ? [this, audit] : [this];
    public bool IngressEnforced { get; }
    public bool EgressEnforced { get; }
    public PolicyEntryKey[] Keys { get; }
    /// <summary>Per entry, its verdict and the position of its rule in <see cref="Rules"/>.</summary>
    public EntryValue[] Values { get; }
    /// <summary>The distinct rules its entries name, in rule order.</summary>
    public RuleReference[] Rules { get; }
    /// <summary>The distinct L7 policies of its redirected entries, in the order they first appeared (entries name them by position).</summary>
    public L7Policy[] L7 { get; }
    /// <summary>Hex SHA-256 of the enforcement flags, rule texts and entries (see <see cref="ContentDigest.Policy"/>).</summary>
    public string Digest { get; }
    public int Count => Keys.Length;

    /// <summary>Entry i's value with its rule.</summary>
    public Candidate CandidateAt(int i) => new(Values[i].Verdict, Rules[Values[i].Rule], L7Of(i), Values[i].Rank);

    /// <summary>What the proxy lets through on entry i, or null when the entry is not redirected.</summary>
    public L7Policy? L7Of(int i) => Values[i].L7 < 0 ? null : L7[Values[i].L7];

    public static CompiledPolicy From(uint identity, bool ingressEnforced, bool egressEnforced, Dictionary<PolicyEntryKey, Candidate> entries)
    {
        var keys = new PolicyEntryKey[entries.Count];
        var candidates = new Candidate[entries.Count];
        var i = 0;
        foreach (var (key, value) in entries) { keys[i] = key; candidates[i] = value; i++; }
        Array.Sort(keys, candidates);
        var rules = DistinctRules(candidates, []);
        var l7 = new List<L7Policy>();
        return new CompiledPolicy(identity, ingressEnforced, egressEnforced, keys, Pack(candidates, rules, l7), rules, [.. l7]);
    }

    /// <summary>This policy with entries for keys it does not have yet (peers it never named).</summary>
    public CompiledPolicy With(Dictionary<PolicyEntryKey, Candidate> added)
    {
        if (added.Count == 0) return this;
        var newKeys = new PolicyEntryKey[added.Count];
        var newCandidates = new Candidate[added.Count];
        var n = 0;
        foreach (var (key, value) in added) { newKeys[n] = key; newCandidates[n] = value; n++; }
        Array.Sort(newKeys, newCandidates);
        // Usually the new peers come through rules that already decide entries here: the rule list stays and the
        // existing entries keep their positions. Otherwise the merged list renumbers them.
        var rules = Rules;
        var l7 = new List<L7Policy>(L7);
        var newValues = Pack(newCandidates, rules, l7);
        int[]? renumbered = null;
        if (newValues.Any(v => v.Rule < 0))
        {
            rules = DistinctRules(newCandidates, Rules);
            renumbered = Rules.Select(r => IndexOf(rules, r)).ToArray();
            newValues = Pack(newCandidates, rules, l7);
        }
        // Merge two sorted runs; the keys are disjoint (the peers are new).
        var keys = new PolicyEntryKey[Count + added.Count];
        var values = new EntryValue[keys.Length];
        var (i, j) = (0, 0);
        for (var k = 0; k < keys.Length; k++)
        {
            if (j >= newKeys.Length || (i < Count && Keys[i].CompareTo(newKeys[j]) < 0))
            {
                keys[k] = Keys[i];
                values[k] = renumbered is null ? Values[i] : Values[i] with { Rule = renumbered[Values[i].Rule] };
                i++;
            }
            else
            {
                keys[k] = newKeys[j];
                values[k] = newValues[j++];
            }
        }
        return new CompiledPolicy(Identity, IngressEnforced, EgressEnforced, keys, values, rules, [.. l7]).WithAudit(Audit);
    }

    public bool SameContent(CompiledPolicy other) => ReferenceEquals(this, other) || Digest == other.Digest;

    /// <summary>The distinct rules (by value) of some candidates and <paramref name="existing"/>, in rule order.</summary>
    private static RuleReference[] DistinctRules(Candidate[] candidates, RuleReference[] existing)
    {
        // Entries of one rule share its reference object: distinct by reference first (cheap), then by value.
        var distinct = new HashSet<RuleReference>(existing, ReferenceEqualityComparer.Instance);
        foreach (var c in candidates) distinct.Add(c.Rule);
        var sorted = distinct.ToList();
        sorted.Sort();
        var rules = new List<RuleReference>(Math.Min(sorted.Count, 16));
        foreach (var r in sorted)
            if (rules.Count == 0 || !rules[^1].Equals(r)) rules.Add(r);
        return rules.ToArray();
    }

    /// <summary>
    /// The candidates with their rules' positions in <paramref name="rules"/> (-1 for a rule it lacks) and their L7
    /// policies' in <paramref name="l7"/>, which gains the ones it lacks.
    /// </summary>
    private static EntryValue[] Pack(Candidate[] candidates, RuleReference[] rules, List<L7Policy> l7)
    {
        var values = new EntryValue[candidates.Length];
        for (var i = 0; i < candidates.Length; i++)
            values[i] = new EntryValue(candidates[i].Verdict, L7IndexOf(l7, candidates[i].L7), IndexOf(rules, candidates[i].Rule), candidates[i].Rank);
        return values;
    }

    private static int L7IndexOf(List<L7Policy> l7, L7Policy? policy)
    {
        if (policy is null) return -1;
        var at = l7.IndexOf(policy);
        if (at >= 0) return at;
        l7.Add(policy);
        return l7.Count - 1;
    }

    /// <summary>The position of a rule (by value) in sorted <paramref name="rules"/>, or -1.</summary>
    private static int IndexOf(RuleReference[] rules, RuleReference rule)
    {
        var at = Array.BinarySearch(rules, rule);
        return at >= 0 && rules[at].Equals(rule) ? at : -1;
    }
}

/// <summary>
/// One entry's verdict and rank (see <see cref="PolicyEntry"/>), with its rule named by position in its policy's rule
/// list and its L7 policy by position in its policy's L7 list (-1: not redirected). Holds no references, so the
/// collector copies the entry arrays of thousands of policies without looking inside them.
/// </summary>
internal readonly record struct EntryValue(Verdict Verdict, int L7, int Rule, ushort Rank);
