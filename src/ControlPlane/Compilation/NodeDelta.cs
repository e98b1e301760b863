using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>One entry of an identity's policy as a delta carries it: the rule by reference (node rule indexes shift), the L7 policy by value.</summary>
public sealed record EntryChange(uint Identity, PolicyEntryKey Key, Verdict Verdict, L7Policy? L7, RuleReference Rule, ushort Rank = 0);

/// <summary>The enforcement of an identity's policy on a node, for an identity that appeared or whose flags changed.</summary>
public sealed record PolicyHeader(uint Identity, bool IngressEnforced, bool EgressEnforced);

/// <summary>
/// What changed on one node between two versions. Applying it means: drop the removed items, then add the added
/// ones (a changed item appears in both lists). A removed identity policy takes its entries with it; an added one
/// brings all of its entries in <see cref="EntriesAdded"/>. <see cref="ContentHash"/> is the node's hash at
/// <see cref="ToVersion"/>.
/// </summary>
public sealed record NodeDelta(
    string Node,
    long FromVersion,
    long ToVersion,
    string ContentHash,
    IReadOnlyList<IpCacheEntry> IpCacheAdded,
    IReadOnlyList<IpCacheEntry> IpCacheRemoved,
    IReadOnlyList<LocalEndpoint> EndpointsAdded,
    IReadOnlyList<LocalEndpoint> EndpointsRemoved,
    IReadOnlyList<PolicyHeader> PoliciesSet,
    IReadOnlyList<uint> PoliciesRemoved,
    IReadOnlyList<EntryChange> EntriesAdded,
    IReadOnlyList<EntryChange> EntriesRemoved,
    IReadOnlyList<FqdnSelector> FqdnsAdded,
    IReadOnlyList<FqdnSelector> FqdnsRemoved)
{
    public static NodeDelta Empty(string node, long from, long to, string contentHash) =>
        new(node, from, to, contentHash, [], [], [], [], [], [], [], [], [], []);

    public bool IsEmpty => Size == 0;

    /// <summary>The number of items it carries: what a wire message would have to send.</summary>
    public int Size => IpCacheAdded.Count + IpCacheRemoved.Count + EndpointsAdded.Count + EndpointsRemoved.Count
        + PoliciesSet.Count + PoliciesRemoved.Count + EntriesAdded.Count + EntriesRemoved.Count + FqdnsAdded.Count + FqdnsRemoved.Count;

    /// <summary>The snapshot at <see cref="ToVersion"/> from the one at <see cref="FromVersion"/>: what an agent would hold.</summary>
    public NodeSnapshot ApplyTo(NodeSnapshot previous)
    {
        if (previous.Node != Node) throw new ArgumentException($"delta of {Node} applied to a snapshot of {previous.Node}", nameof(previous));
        if (previous.Version != FromVersion) throw new ArgumentException($"delta from v{FromVersion} applied to v{previous.Version}", nameof(previous));

        var ipCache = previous.IpCache.ToDictionary(e => e.Cidr, StringComparer.Ordinal);
        foreach (var e in IpCacheRemoved) ipCache.Remove(e.Cidr);
        foreach (var e in IpCacheAdded) ipCache[e.Cidr] = e;

        var fqdns = previous.Fqdns.ToDictionary(f => f.Identity);
        foreach (var f in FqdnsRemoved) fqdns.Remove(f.Identity);
        foreach (var f in FqdnsAdded) fqdns[f.Identity] = f;

        var endpoints = previous.Endpoints.ToDictionary(e => e.Id, StringComparer.Ordinal);
        foreach (var e in EndpointsRemoved) endpoints.Remove(e.Id);
        foreach (var e in EndpointsAdded) endpoints[e.Id] = e;

        var rules = previous.Rules.Select(RuleReference.Parse).ToArray();
        var policies = previous.Policies.ToDictionary(p => p.Identity, p => (
            Header: new PolicyHeader(p.Identity, p.IngressEnforced, p.EgressEnforced),
            Entries: p.Entries.ToDictionary(e => e.Key, e => new Candidate(e.Verdict, rules[e.RuleIndex], e.L7, e.Rank))));
        foreach (var id in PoliciesRemoved) policies.Remove(id);
        foreach (var h in PoliciesSet)
            policies[h.Identity] = policies.TryGetValue(h.Identity, out var p) ? p with { Header = h } : (h, []);
        foreach (var e in EntriesRemoved) policies[e.Identity].Entries.Remove(e.Key);
        foreach (var e in EntriesAdded) policies[e.Identity].Entries[e.Key] = new Candidate(e.Verdict, e.Rule, e.L7, e.Rank);

        var compiled = policies.Values.OrderBy(p => p.Header.Identity)
            .Select(p => CompiledPolicy.From(p.Header.Identity, p.Header.IngressEnforced, p.Header.EgressEnforced, p.Entries))
            .ToList();
        return SnapshotAssembly.Build(Node, ToVersion, ipCache.Values.OrderBy(e => new IpCacheKey(e.Cidr)).ToList(),
            fqdns.Values.OrderBy(f => f.Identity).ToList(), endpoints.Values.Order(SnapshotAssembly.EndpointOrder).ToList(), compiled);
    }
}

/// <summary>The result of one <see cref="IncrementalCompiler.Commit"/>: the nodes whose content changed (sorted).</summary>
public sealed record CompileCommit(long FromVersion, long Version, IReadOnlyList<string> Changed)
{
    /// <summary>Identities whose policy was recompiled (shared ones count once, however many nodes they are on).</summary>
    public int IdentitiesCompiled { get; init; }
}
