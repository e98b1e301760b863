using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Puts compiled identity policies on a node: numbers the node's rules (only rules that decide something, in rule
/// order), turns rule references into indexes and computes the content hash. Shared by the full compile, the
/// incremental compiler and a delta applied to a snapshot, so all three produce the same lists.
/// </summary>
internal static class SnapshotAssembly
{
    public static NodeSnapshot Build(string node, long version, IReadOnlyList<IpCacheEntry> ipCache, IReadOnlyList<FqdnSelector> fqdns,
        IReadOnlyList<LocalEndpoint> endpoints, IReadOnlyList<CompiledPolicy> policies, SetDigest? ipCacheDigest = null)
    {
        var rules = policies.SelectMany(p => p.Rules).Distinct().Order().ToList();
        var ruleIndex = new Dictionary<RuleReference, uint>(rules.Count);
        for (var i = 0; i < rules.Count; i++) ruleIndex[rules[i]] = (uint)i;
        var identityPolicies = policies.Select(p =>
        {
            var nodeRule = Array.ConvertAll(p.Rules, r => ruleIndex[r]);
            var entries = new PolicyEntry[p.Count];
            for (var i = 0; i < p.Count; i++)
            {
                var (key, value) = (p.Keys[i], p.Values[i]);
                entries[i] = new PolicyEntry(key.Direction, key.Peer, key.Protocol, key.Port, value.Verdict, nodeRule[value.Rule],
                    key.PortPrefixLength, p.L7Of(i), key.Tier, value.Rank);
            }
            return new IdentityPolicy(p.Identity, p.IngressEnforced, p.EgressEnforced, entries);
        }).ToList();
        var hash = ContentDigest.Node(node, ipCacheDigest ?? ContentDigest.IpCache(ipCache), ContentDigest.Endpoints(endpoints),
            ContentDigest.Policies(policies.Select(p => (p.Identity, p.Digest))), ContentDigest.Fqdns(fqdns));
        return new NodeSnapshot(node, version, ipCache, fqdns, endpoints, identityPolicies, rules.Select(r => r.ToString()).ToList(), hash);
    }

    /// <summary>The order of local endpoints in a snapshot: by id, then interface.</summary>
    public static readonly IComparer<LocalEndpoint> EndpointOrder = Comparer<LocalEndpoint>.Create((a, b) =>
    {
        var c = string.CompareOrdinal(a.Id, b.Id);
        return c != 0 ? c : string.CompareOrdinal(a.Interface, b.Interface);
    });

    public static string HostCidr(string ip) =>
        ip.Contains('/') ? ip : ip.Contains(':') ? $"{ip}/128" : $"{ip}/32";
}

/// <summary>
/// An ipcache key in snapshot order: numeric address order (10.0.0.9 before 10.0.0.10), IPv4 before IPv6, shorter
/// prefix first; unparsable text after every prefix, in text order. Parsed once, so sorting 50,000 is cheap.
/// </summary>
internal readonly struct IpCacheKey : IComparable<IpCacheKey>
{
    public IpCacheKey(string cidr)
    {
        Cidr = cidr;
        Parsed = CidrPrefix.TryParse(cidr, out var prefix);
        Prefix = prefix;
    }

    public string Cidr { get; }
    public bool Parsed { get; }
    public CidrPrefix Prefix { get; }

    public int CompareTo(IpCacheKey other)
    {
        if (Parsed && other.Parsed)
        {
            var c = Prefix.CompareTo(other.Prefix);
            if (c != 0) return c;
        }
        else if (Parsed != other.Parsed) return Parsed ? -1 : 1;
        return string.CompareOrdinal(Cidr, other.Cidr);
    }

    /// <summary>The prefix as a CIDR rule would name it (host bits cleared), or the text if it is not one.</summary>
    public string Normalized => Parsed ? Prefix.ToString() : Cidr;
}
