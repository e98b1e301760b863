using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// The node-local identities of one compile (bit 24, <see cref="NumericIdentity.LocalScopeFlag"/>): one per CIDR
/// that a policy selecting a local endpoint names (its except CIDRs included), then one per toFQDNs match. They
/// are numbered in CIDR order, then name order, so equal inputs give equal numbers. A CIDR goes into the ipcache
/// under its own identity: the ipcache is a longest-prefix match, so an except CIDR inside a wider one carves
/// its addresses out, and an endpoint's own address (a longer prefix still) keeps the endpoint's identity.
/// 0.0.0.0/0 and ::/0 are the world identity itself, as in Cilium. FQDN identities have no addresses until the
/// DNS proxy learns some, so today they admit nothing. (Address groups share the range with bits 25–31 set, and are
/// numbered for the whole cluster: see AddressGroups.cs.)
/// </summary>
internal sealed class LocalIdentities
{
    private readonly List<(CidrPrefix Prefix, uint Identity)> cidrs = [];
    private readonly Dictionary<DnsMatch, uint> fqdns = [];

    public LocalIdentities(IEnumerable<PeerSelector> peers)
    {
        var all = peers.ToList();
        var prefixes = all.OfType<PeerSelector.Cidr>().SelectMany(c => c.Except.Prepend(c.Prefix))
            .Where(p => !p.IsEverything).Distinct().Order().ToList();
        var names = all.OfType<PeerSelector.Fqdn>().Select(f => f.Match).Distinct()
            .OrderBy(m => m.MatchName ?? "", StringComparer.Ordinal).ThenBy(m => m.MatchPattern ?? "", StringComparer.Ordinal).ToList();
        var next = NumericIdentity.LocalScopeFlag + 1;
        foreach (var prefix in prefixes) cidrs.Add((prefix, next++));
        foreach (var name in names) fqdns[name] = next++;
    }

    public static readonly LocalIdentities None = new([]);

    public bool HasCidrs => cidrs.Count > 0;

    public IEnumerable<uint> All => cidrs.Select(c => c.Identity).Concat(fqdns.Values).Order();

    /// <summary>The world entity on this node: the world identity and every node-local identity.</summary>
    public uint[] World => world ??= All.Prepend(NumericIdentity.World.Value).Order().ToArray();
    private uint[]? world;

    /// <summary>What the numbering depends on: equal keys give equal identities, so compiled policies can be shared.</summary>
    public string Key => key ??= string.Join(' ', cidrs.Select(c => c.Prefix.ToString()).Concat(fqdns.Keys
        .OrderBy(m => m.MatchName ?? "", StringComparer.Ordinal).ThenBy(m => m.MatchPattern ?? "", StringComparer.Ordinal)
        .Select(m => m.ToString())));
    private string? key;

    /// <summary>The peers whose identities depend on the node: CIDRs (world included) and DNS names.</summary>
    public static bool IsNodeDependent(PeerSelector peer) =>
        peer is PeerSelector.Cidr or PeerSelector.Fqdn or PeerSelector.EntityPeer { Entity: Entity.World };

    /// <summary>A CIDR selector's identities: 0.0.0.0/0 and ::/0 add the world identity itself.</summary>
    public IReadOnlyList<uint> Matching(PeerSelector.Cidr selector) =>
        selector.Prefix.IsEverything ? Inside(selector).Prepend(NumericIdentity.World.Value).ToArray() : Inside(selector).ToArray();

    public IEnumerable<IpCacheEntry> IpCacheEntries => cidrs.Select(c => new IpCacheEntry(c.Prefix.ToString(), c.Identity));

    /// <summary>Each toFQDNs match with its identity, by identity: what the node's DNS proxy maps learned addresses to.</summary>
    public IReadOnlyList<FqdnSelector> FqdnSelectors => fqdnSelectors ??= fqdns.Select(f => new FqdnSelector(f.Value, f.Key)).OrderBy(f => f.Identity).ToArray();
    private FqdnSelector[]? fqdnSelectors;

    /// <summary>The identities of the addresses a CIDR selector admits: inside the prefix, outside every except.</summary>
    public IEnumerable<uint> Inside(PeerSelector.Cidr selector) =>
        cidrs.Where(c => selector.Prefix.Contains(c.Prefix) && !selector.Except.Any(e => e.Contains(c.Prefix))).Select(c => c.Identity);

    public uint Of(DnsMatch match) => fqdns[match];
}
