using System.Net;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Turns the desired state (policies, the identity table, every endpoint) into one node's snapshot. Pure: no I/O,
/// clock or shared state, and every output list is sorted, so the same inputs give a byte-identical snapshot.
/// </summary>
public static class PolicyCompiler
{
    // Expanding "any protocol" on a port into the protocols that have ports: the datapath keys on one protocol.
    private static readonly Protocol[] PortedProtocols = [Protocol.Tcp, Protocol.Udp, Protocol.Sctp];

    public static NodeSnapshot Compile(string node, long version, IReadOnlyCollection<NetworkPolicy> policies,
        IReadOnlyDictionary<uint, LabelSet> identities, IReadOnlyCollection<CompilerEndpoint> endpoints)
    {
        var ipCache = IpCache(endpoints);
        var local = endpoints.Where(e => e.Node == node)
            .OrderBy(e => e.Id, StringComparer.Ordinal).ThenBy(e => e.Interface, StringComparer.Ordinal)
            .Select(e => new LocalEndpoint(e.Id, e.Interface, e.Ip, e.Identity))
            .ToList();

        var sortedPolicies = policies.OrderBy(p => p.Namespace ?? "", StringComparer.Ordinal)
            .ThenBy(p => p.Name, StringComparer.Ordinal).ToList();
        var peers = new PeerResolver(identities);

        var resolved = local.Select(e => e.Identity).Distinct().Order()
            .Select(identity => Resolve(identity, identities.GetValueOrDefault(identity) ?? LabelSet.Empty, sortedPolicies, peers))
            .ToList();

        // Rule indexes are assigned after resolution so that Rules lists only rules that decide something, in order.
        var rules = resolved.SelectMany(r => r.Entries.Values.Select(c => c.Rule)).Distinct().Order().ToList();
        var ruleIndex = rules.Select((rule, i) => (rule, i)).ToDictionary(x => x.rule, x => (uint)x.i);
        var identityPolicies = resolved.Select(r => new IdentityPolicy(r.Identity, r.IngressEnforced, r.EgressEnforced,
                r.Entries.OrderBy(kv => kv.Key)
                    .Select(kv => new PolicyEntry(kv.Key.Direction, kv.Key.Peer, kv.Key.Protocol, kv.Key.Port, kv.Value.Verdict, ruleIndex[kv.Value.Rule]))
                    .ToList()))
            .ToList();
        var ruleTexts = rules.Select(r => r.ToString()).ToList();

        var hash = NodeSnapshot.Hash(node, ipCache, local, identityPolicies, ruleTexts);
        return new NodeSnapshot(node, version, ipCache, local, identityPolicies, ruleTexts, hash);
    }

    private sealed record Candidate(Verdict Verdict, RuleReference Rule);

    private sealed record Resolution(uint Identity, bool IngressEnforced, bool EgressEnforced, Dictionary<PolicyEntryKey, Candidate> Entries);

    private static Resolution Resolve(uint identity, LabelSet labels, List<NetworkPolicy> policies, PeerResolver peers)
    {
        var entries = new Dictionary<PolicyEntryKey, Candidate>();
        bool ingressEnforced = false, egressEnforced = false;
        foreach (var policy in policies)
        {
            if (!policy.EffectiveEndpointSelector.Matches(labels)) continue;
            // A selecting policy makes its directions default-deny even when its rules allow nothing (`ingress: [{}]`).
            ingressEnforced |= policy.Spec.HasIngress;
            egressEnforced |= policy.Spec.HasEgress;
            AddRules(entries, policy, RuleSection.Ingress, policy.Spec.Ingress, peers);
            AddRules(entries, policy, RuleSection.IngressDeny, policy.Spec.IngressDeny, peers);
            AddRules(entries, policy, RuleSection.Egress, policy.Spec.Egress, peers);
            AddRules(entries, policy, RuleSection.EgressDeny, policy.Spec.EgressDeny, peers);
        }
        return new Resolution(identity, ingressEnforced, egressEnforced, entries);
    }

    private static void AddRules(Dictionary<PolicyEntryKey, Candidate> entries, NetworkPolicy policy, RuleSection section,
        IReadOnlyList<PolicyRule> rules, PeerResolver peers)
    {
        var direction = section is RuleSection.Ingress or RuleSection.IngressDeny ? Direction.Ingress : Direction.Egress;
        var verdict = section is RuleSection.IngressDeny or RuleSection.EgressDeny ? Verdict.Deny : Verdict.Allow;
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (rule.AllowsNothing) continue;
            var candidate = new Candidate(verdict, RuleReference.Of(policy, section, i));
            foreach (var peer in Peers(rule, policy, peers))
            {
                foreach (var (protocol, port) in Ports(rule))
                    Add(entries, new PolicyEntryKey(direction, peer, protocol, port), candidate);
            }
        }
    }

    // Precedence, the same words as bpf/lib/policy.h. The datapath looks up (peer,proto,port), (peer,proto,0),
    // (peer,0,0), (0,proto,port), (0,proto,0), (0,0,0):
    //   1. deny wins: any Deny among the hits drops the packet, however general its key.
    //   2. more specific key: among allows, the first hit in that order names the rule that allowed it.
    //   3. same key: the compiler keeps one entry per key, the deny's if any rule denies it, else the first
    //      rule in sorted order (namespace, name, section, index).
    private static void Add(Dictionary<PolicyEntryKey, Candidate> entries, PolicyEntryKey key, Candidate candidate)
    {
        if (!entries.TryGetValue(key, out var existing)
            || (candidate.Verdict == Verdict.Deny && existing.Verdict == Verdict.Allow)
            || (candidate.Verdict == existing.Verdict && candidate.Rule.CompareTo(existing.Rule) < 0))
        {
            entries[key] = candidate;
        }
    }

    private static IEnumerable<uint> Peers(PolicyRule rule, NetworkPolicy policy, PeerResolver peers) =>
        rule.Peers is null
            ? [PolicyEntryKey.AnyPeer]
            : rule.Peers.SelectMany(selector => peers.Matching(policy.Scope(selector))).Distinct().Order();

    private static IEnumerable<(Protocol, ushort)> Ports(PolicyRule rule)
    {
        if (rule.Ports.Count == 0) return [(Protocol.Any, 0)];
        return rule.Ports.SelectMany(p => p.Protocol == Protocol.Any && p.Port != 0
            ? PortedProtocols.Select(protocol => (protocol, p.Port))
            : [(p.Protocol, p.Port)]);
    }

    private static List<IpCacheEntry> IpCache(IReadOnlyCollection<CompilerEndpoint> endpoints) =>
        endpoints
            // Two endpoints claiming one address is a transient of re-registration; the first by id wins, deterministically.
            .GroupBy(e => Cidr(e.Ip), StringComparer.Ordinal)
            .Select(g => new IpCacheEntry(g.Key, g.MinBy(e => e.Id, StringComparer.Ordinal)!.Identity))
            .OrderBy(e => e.Cidr, CidrOrder.Instance)
            .ToList();

    private static string Cidr(string ip) =>
        ip.Contains('/') ? ip : ip.Contains(':') ? $"{ip}/128" : $"{ip}/32";

    /// <summary>Identities matched by a selector, computed once per distinct selector of a compile.</summary>
    private sealed class PeerResolver(IReadOnlyDictionary<uint, LabelSet> identities)
    {
        private readonly Dictionary<LabelSelector, uint[]> cache = [];

        public uint[] Matching(LabelSelector selector)
        {
            if (!cache.TryGetValue(selector, out var matched))
            {
                // Identity 0 is the wildcard peer in a key; it can never be a concrete peer.
                matched = identities.Where(kv => kv.Key != PolicyEntryKey.AnyPeer && selector.Matches(kv.Value))
                    .Select(kv => kv.Key).Order().ToArray();
                cache[selector] = matched;
            }
            return matched;
        }
    }

    /// <summary>Numeric address order (10.0.0.9 before 10.0.0.10), IPv4 before IPv6; text order for anything unparsable.</summary>
    private sealed class CidrOrder : IComparer<string>
    {
        public static readonly CidrOrder Instance = new();

        public int Compare(string? x, string? y)
        {
            var a = Parse(x);
            var b = Parse(y);
            if (a is not null && b is not null)
            {
                var c = a.Length.CompareTo(b.Length);
                if (c == 0) c = a.AsSpan().SequenceCompareTo(b);
                if (c != 0) return c;
            }
            else if (a is not null != b is not null) return a is null ? 1 : -1;
            return string.CompareOrdinal(x, y);
        }

        private static byte[]? Parse(string? cidr)
        {
            var slash = cidr?.IndexOf('/') ?? -1;
            var address = slash < 0 ? cidr : cidr![..slash];
            return IPAddress.TryParse(address, out var ip) ? ip.GetAddressBytes() : null;
        }
    }
}
