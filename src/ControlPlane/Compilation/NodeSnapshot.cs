using Proto = Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Everything one node enforces at one version. Lists are sorted, so equal inputs give equal snapshots, and
/// <see cref="ContentHash"/> covers everything but <see cref="Version"/>: two versions that change nothing for
/// this node have the same hash, which lets distribution skip them.
/// </summary>
/// <param name="Fqdns">The node-local identity of each toFQDNs match that a policy of a local endpoint names, by identity.</param>
public sealed record NodeSnapshot(
    string Node,
    long Version,
    IReadOnlyList<IpCacheEntry> IpCache,
    IReadOnlyList<FqdnSelector> Fqdns,
    IReadOnlyList<LocalEndpoint> Endpoints,
    IReadOnlyList<IdentityPolicy> Policies,
    IReadOnlyList<string> Rules,
    string ContentHash)
{
    /// <summary>The policy of a local identity, or null when no local endpoint has it.</summary>
    public IdentityPolicy? PolicyOf(uint identity) => Policies.FirstOrDefault(p => p.Identity == identity);

    public Proto.NodeSnapshot ToProto()
    {
        var snapshot = new Proto.NodeSnapshot { Node = Node, Version = checked((ulong)Version), ContentHash = ContentHash };
        snapshot.Ipcache.AddRange(IpCache.Select(e => new Proto.IpCacheEntry { Cidr = e.Cidr, Identity = e.Identity }));
        snapshot.Fqdns.AddRange(Fqdns.Select(ToProto));
        snapshot.Endpoints.AddRange(Endpoints.Select(e => new Proto.LocalEndpoint
        {
            Id = e.Id, InterfaceName = e.Interface, Ip = e.Ip, Identity = e.Identity,
        }));
        snapshot.Policies.AddRange(Policies.Select(p =>
        {
            var policy = new Proto.IdentityPolicy { Identity = p.Identity, IngressEnforced = p.IngressEnforced, EgressEnforced = p.EgressEnforced };
            policy.Entries.AddRange(p.Entries.Select(e => new Proto.PolicyEntry
            {
                Direction = e.Direction == Direction.Ingress ? Proto.Direction.Ingress : Proto.Direction.Egress,
                PeerIdentity = e.Peer,
                Protocol = (uint)e.Protocol,
                Port = e.Port,
                // 16 = one port, 0 = any port, fewer = one aligned block of an endPort range (several entries per range).
                PortPrefixLen = e.PortPrefixLength,
                L7 = Proto.L7Wire.ToProto(e.L7),
                Verdict = ToProto(e.Verdict),
                RuleIndex = e.RuleIndex,
                Tier = ToProto(e.Tier),
                Rank = e.Rank,
            }));
            return policy;
        }));
        snapshot.Rules.AddRange(Rules);
        return snapshot;
    }

    internal static Proto.FqdnSelector ToProto(FqdnSelector selector)
    {
        var wire = new Proto.FqdnSelector { Identity = selector.Identity };
        if (selector.Match.MatchName is { } name) wire.MatchName = name;
        else wire.MatchPattern = selector.Match.MatchPattern;
        return wire;
    }

    internal static Proto.Verdict ToProto(Verdict verdict) => verdict switch
    {
        Verdict.Deny => Proto.Verdict.Deny,
        Verdict.Pass => Proto.Verdict.Pass,
        _ => Proto.Verdict.Allow,
    };

    internal static Proto.Tier ToProto(Mesh.Contracts.Policies.PolicyTier tier) => tier switch
    {
        Mesh.Contracts.Policies.PolicyTier.Admin => Proto.Tier.Admin,
        Mesh.Contracts.Policies.PolicyTier.Baseline => Proto.Tier.Baseline,
        _ => Proto.Tier.Policy,
    };

    /// <summary>
    /// The content hash recomputed from the lists alone (see <see cref="ContentDigest"/>): what any builder of a
    /// snapshot must arrive at. The lists must be in their sorted order.
    /// </summary>
    internal static string Hash(string node, IReadOnlyList<IpCacheEntry> ipCache, IReadOnlyList<FqdnSelector> fqdns,
        IReadOnlyList<LocalEndpoint> endpoints, IReadOnlyList<IdentityPolicy> policies, IReadOnlyList<string> rules)
    {
        var digests = policies.Select(p =>
        {
            // The identity's own rule list: the node's indexes it uses, ascending, which is rule order.
            var used = p.Entries.Select(e => e.RuleIndex).Distinct().Order().ToArray();
            var local = new Dictionary<uint, int>(used.Length);
            for (var i = 0; i < used.Length; i++) local[used[i]] = i;
            var entries = p.Entries;
            var digest = ContentDigest.Policy(p.IngressEnforced, p.EgressEnforced, used.Select(u => rules[(int)u]).ToArray(), entries.Count,
                i => (entries[i].Key, entries[i].Verdict, entries[i].L7, local[entries[i].RuleIndex], entries[i].Rank));
            return (p.Identity, digest);
        });
        return ContentDigest.Node(node, ContentDigest.IpCache(ipCache), ContentDigest.Endpoints(endpoints), ContentDigest.Policies(digests),
            ContentDigest.Fqdns(fqdns));
    }
}
