using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Proxy;

/// <summary>
/// What the DNS proxy learned, in the datapath's terms: each learned address enters the ipcache under the identity of
/// the toFQDNs selectors its names match, so the entries that allow those identities allow it. An address that several
/// selectors match (a name and a pattern, or two names of one address), or that lies in a CIDR some policy names, gets
/// an identity of its own for that set, and every entry that allows a member of the set allows it too, as the kernel
/// looks up one identity per address. A pod's or the node's own address keeps its identity.
/// </summary>
public static class FqdnAddresses
{
    /// <summary>The first identity this node makes for a set of selectors: node-local (bit 24), above the compiler's own.</summary>
    public const uint FirstSetIdentity = NumericIdentity.LocalScopeFlag | 0x00FF_0000;

    public static DatapathSnapshot With(DatapathSnapshot target, IEnumerable<FqdnSelector> selectors,
        IReadOnlyDictionary<string, ImmutableHashSet<IPAddress>> learned)
    {
        var matches = selectors.Select(s => (s.Identity, Match: new DnsMatch(s.HasMatchName ? s.MatchName : null, s.HasMatchPattern ? s.MatchPattern : null))).ToList();
        if (matches.Count == 0 || learned.Count == 0) return target;

        var exact = target.IpCache.Where(e => e.Cidr.PrefixLength == 32).Select(e => e.Cidr.BaseAddress).ToHashSet();
        var prefixes = target.IpCache.Where(e => e.Cidr.PrefixLength < 32 && e.Identity != NumericIdentity.World.Value)
            .OrderByDescending(e => e.Cidr.PrefixLength).ToList();
        var byAddress = new Dictionary<IPAddress, SortedSet<uint>>();
        foreach (var (name, addresses) in learned)
        {
            var identities = matches.Where(m => m.Match.Matches(name)).Select(m => m.Identity).ToList();
            if (identities.Count == 0) continue;
            foreach (var address in addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork && !exact.Contains(a)))
            {
                if (!byAddress.TryGetValue(address, out var set))
                {
                    byAddress[address] = set = [];
                    if (prefixes.FirstOrDefault(p => p.Cidr.Contains(address)) is { } covering) set.Add(covering.Identity);
                }
                set.UnionWith(identities);
            }
        }
        if (byAddress.Count == 0) return target;

        // One identity per distinct set, numbered in the order of the sets, so equal inputs give equal numbers.
        var sets = byAddress.Values.Where(s => s.Count > 1).Select(s => string.Join(',', s)).Distinct().Order(StringComparer.Ordinal)
            .Select((key, i) => (key, Identity: FirstSetIdentity + (uint)i)).ToDictionary(s => s.key, s => s.Identity);
        var ipCache = target.IpCache.ToList();
        var members = new Dictionary<uint, List<uint>>();   // member identity → the set identities it belongs to
        foreach (var (address, set) in byAddress)
        {
            if (set.Count == 1) { ipCache.Add(new IpCacheItem(new IPNetwork(address, 32), set.Min)); continue; }
            var identity = sets[string.Join(',', set)];
            ipCache.Add(new IpCacheItem(new IPNetwork(address, 32), identity));
            foreach (var member in set)
            {
                if (!members.TryGetValue(member, out var of)) members[member] = of = [];
                if (!of.Contains(identity)) of.Add(identity);
            }
        }
        var policies = members.Count == 0 ? target.Policies : target.Policies.Select(p => p with
        {
            Entries = [.. p.Entries, .. p.Entries.SelectMany(e => members.TryGetValue(e.PeerIdentity, out var of) ? of.Select(s => e with { PeerIdentity = s }) : [])],
        }).ToList();
        return target with { IpCache = ipCache, Policies = policies };
    }
}
