using Mesh.Contracts.Agent;
using L7Policy = Mesh.Contracts.Policies.L7Policy;

namespace Mesh.NodeAgent.Sync;

/// <summary>
/// The snapshot an agent holds, kept as maps so a delta applies in what it carries, with the content hash followed
/// item by item. <see cref="Apply(NodeSnapshotDelta)"/> rebuilds the next version and says whether its hash is the
/// one the control plane announced. With <c>keepIpCache: false</c> the ipcache is followed by its hash alone (for
/// simulating many agents in one process: every node holds the whole cluster's ipcache).
/// </summary>
public sealed class HeldSnapshot(bool keepIpCache = true)
{
    private sealed class Policy(bool ingress, bool egress)
    {
        public bool Ingress = ingress, Egress = egress;
        public readonly SortedDictionary<EntryKey, (byte Verdict, L7Policy? L7, string Rule, ushort Rank)> Entries = [];
        public string? Digest;
    }

    private readonly Dictionary<string, uint> _ipCache = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LocalEndpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly SortedDictionary<uint, Policy> _policies = [];
    private readonly SortedDictionary<uint, FqdnSelector> _fqdns = [];
    private SetHash _ipHash, _endpointHash, _policyHash, _fqdnHash;
    // Whether a set hash moved since the content hash was computed: most versions change nothing on most nodes.
    private bool _changed = true;

    public string Node { get; private set; } = "";
    public ulong Version { get; private set; }
    public string ContentHash { get; private set; } = "";
    public bool Holds => Version > 0;
    public int EntryCount => _policies.Values.Sum(p => p.Entries.Count);

    /// <summary>Replaces everything with <paramref name="snapshot"/>; false when its content hash does not match its lists.</summary>
    public bool Apply(NodeSnapshot snapshot)
    {
        _ipCache.Clear(); _endpoints.Clear(); _policies.Clear(); _fqdns.Clear();
        (_ipHash, _endpointHash, _policyHash, _fqdnHash, _changed) = (default, default, default, default, true);
        Node = snapshot.Node;
        foreach (var e in snapshot.Ipcache) AddIpCache(e);
        foreach (var f in snapshot.Fqdns) AddFqdn(f);
        foreach (var e in snapshot.Endpoints) AddEndpoint(e);
        foreach (var p in snapshot.Policies)
        {
            var policy = _policies[p.Identity] = new Policy(p.IngressEnforced, p.EgressEnforced);
            foreach (var e in p.Entries) policy.Entries[KeyOf(e)] = ((byte)e.Verdict, L7Wire.FromProto(e.L7), snapshot.Rules[(int)e.RuleIndex], RankOf(e));
        }
        return Finish(snapshot.Version, snapshot.ContentHash, _policies.Keys.ToList());
    }

    /// <summary>
    /// Moves to the delta's version; false when the result's hash is not the announced one (the state is then
    /// unusable until a whole snapshot replaces it). Throws when the delta does not start from the held version.
    /// </summary>
    public bool Apply(NodeSnapshotDelta delta)
    {
        if (!Holds || delta.FromVersion != Version || delta.Node != Node)
            throw new InvalidOperationException($"delta {delta.Node} v{delta.FromVersion}->v{delta.Version} does not start from the held {Node} v{Version}");
        // Most versions change nothing on most nodes: such a delta only moves the version.
        if (delta.IpcacheRemoved.Count + delta.IpcacheAdded.Count + delta.EndpointsRemoved.Count + delta.EndpointsAdded.Count +
            delta.PoliciesRemoved.Count + delta.PoliciesSet.Count + delta.EntriesRemoved.Count + delta.EntriesAdded.Count +
            delta.FqdnsRemoved.Count + delta.FqdnsAdded.Count == 0)
            return Finish(delta.Version, delta.ContentHash, []);
        foreach (var e in delta.IpcacheRemoved) RemoveIpCache(e);
        foreach (var e in delta.IpcacheAdded) AddIpCache(e);
        foreach (var f in delta.FqdnsRemoved) RemoveFqdn(f.Identity);
        foreach (var f in delta.FqdnsAdded) AddFqdn(f);
        foreach (var e in delta.EndpointsRemoved) RemoveEndpoint(e.Id);
        foreach (var e in delta.EndpointsAdded) AddEndpoint(e);

        var touched = new HashSet<uint>();
        foreach (var id in delta.PoliciesRemoved)
            if (_policies.Remove(id, out var gone) && gone.Digest is { } digest)
            {
                _policyHash.Remove(SnapshotDigest.PolicyLine(id, digest));
                _changed = true;
            }
        foreach (var h in delta.PoliciesSet)
        {
            if (_policies.TryGetValue(h.Identity, out var p)) (p.Ingress, p.Egress) = (h.IngressEnforced, h.EgressEnforced);
            else _policies[h.Identity] = new Policy(h.IngressEnforced, h.EgressEnforced);
            touched.Add(h.Identity);
        }
        foreach (var e in delta.EntriesRemoved)
            if (_policies.TryGetValue(e.Identity, out var p) && p.Entries.Remove(KeyOf(e.Entry))) touched.Add(e.Identity);
        foreach (var e in delta.EntriesAdded)
        {
            _policies[e.Identity].Entries[KeyOf(e.Entry)] = ((byte)e.Entry.Verdict, L7Wire.FromProto(e.Entry.L7), delta.Rules[(int)e.Entry.RuleIndex], RankOf(e.Entry));
            touched.Add(e.Identity);
        }
        return Finish(delta.Version, delta.ContentHash, touched);
    }

    /// <summary>The held version as a whole snapshot: the node's rules are the ones its entries use, in rule order.</summary>
    public NodeSnapshot ToSnapshot()
    {
        var rules = _policies.Values.SelectMany(p => p.Entries.Values.Select(v => v.Rule)).Distinct(StringComparer.Ordinal)
            .Order(RuleOrder.Instance).ToList();
        var index = new Dictionary<string, uint>(rules.Count, StringComparer.Ordinal);
        for (var i = 0; i < rules.Count; i++) index[rules[i]] = (uint)i;
        var snapshot = new NodeSnapshot { Node = Node, Version = Version, ContentHash = ContentHash };
        if (keepIpCache)
            snapshot.Ipcache.AddRange(_ipCache.Select(e => new IpCacheEntry { Cidr = e.Key, Identity = e.Value }));
        snapshot.Fqdns.AddRange(_fqdns.Values);
        snapshot.Endpoints.AddRange(_endpoints.Values.OrderBy(e => e.Id, StringComparer.Ordinal).ThenBy(e => e.InterfaceName, StringComparer.Ordinal));
        foreach (var (id, p) in _policies)
        {
            var policy = new IdentityPolicy { Identity = id, IngressEnforced = p.Ingress, EgressEnforced = p.Egress };
            policy.Entries.AddRange(p.Entries.Select(e => new PolicyEntry
            {
                Direction = (Direction)e.Key.Direction, PeerIdentity = e.Key.Peer, Protocol = e.Key.Protocol, Port = e.Key.Port,
                PortPrefixLen = e.Key.PrefixLength, Verdict = (Verdict)e.Value.Verdict, L7 = L7Wire.ToProto(e.Value.L7), RuleIndex = index[e.Value.Rule],
                Tier = (Tier)e.Key.Tier, Rank = e.Value.Rank,
            }));
            snapshot.Policies.Add(policy);
        }
        snapshot.Rules.AddRange(rules);
        return snapshot;
    }

    private bool Finish(ulong version, string announced, IEnumerable<uint> touched)
    {
        foreach (var id in touched)
        {
            if (!_policies.TryGetValue(id, out var p)) continue;
            if (p.Digest is { } old) _policyHash.Remove(SnapshotDigest.PolicyLine(id, old));
            p.Digest = Digest(p);
            _policyHash.Add(SnapshotDigest.PolicyLine(id, p.Digest));
            _changed = true;
        }
        Version = version;
        if (_changed) ContentHash = SnapshotDigest.Node(Node, _ipHash, _endpointHash, _policyHash, _fqdnHash);
        _changed = false;
        return ContentHash == announced;
    }

    private static string Digest(Policy p)
    {
        var rules = p.Entries.Values.Select(v => v.Rule).Distinct(StringComparer.Ordinal).Order(RuleOrder.Instance).ToList();
        var position = new Dictionary<string, int>(rules.Count, StringComparer.Ordinal);
        for (var i = 0; i < rules.Count; i++) position[rules[i]] = i;
        return SnapshotDigest.Policy(p.Ingress, p.Egress, rules,
            p.Entries.Select(e => (e.Key, e.Value.Verdict, e.Value.L7, position[e.Value.Rule], e.Value.Rank)).ToList());
    }

    private void AddIpCache(IpCacheEntry e)
    {
        if (keepIpCache) _ipCache[e.Cidr] = e.Identity;
        _ipHash.Add(SnapshotDigest.IpCacheLine(e.Cidr, e.Identity));
        _changed = true;
    }

    private void RemoveIpCache(IpCacheEntry e)
    {
        if (keepIpCache) _ipCache.Remove(e.Cidr);
        _ipHash.Remove(SnapshotDigest.IpCacheLine(e.Cidr, e.Identity));
        _changed = true;
    }

    // By identity: a node numbers each of its toFQDNs selectors with an identity of its own.
    private void AddFqdn(FqdnSelector f)
    {
        RemoveFqdn(f.Identity);
        _fqdns[f.Identity] = f;
        _fqdnHash.Add(SnapshotDigest.FqdnLine(f));
        _changed = true;
    }

    private void RemoveFqdn(uint identity)
    {
        if (!_fqdns.Remove(identity, out var f)) return;
        _fqdnHash.Remove(SnapshotDigest.FqdnLine(f));
        _changed = true;
    }

    private void AddEndpoint(LocalEndpoint e)
    {
        _endpoints[e.Id] = e;
        _endpointHash.Add(SnapshotDigest.EndpointLine(e.Id, e.InterfaceName, e.Ip, e.Identity));
        _changed = true;
    }

    private void RemoveEndpoint(string id)
    {
        if (!_endpoints.Remove(id, out var e)) return;
        _endpointHash.Remove(SnapshotDigest.EndpointLine(e.Id, e.InterfaceName, e.Ip, e.Identity));
        _changed = true;
    }

    private static EntryKey KeyOf(PolicyEntry e) =>
        new((byte)e.Direction, e.PeerIdentity, checked((byte)e.Protocol), checked((ushort)e.Port), checked((byte)e.PortPrefixLen), checked((byte)e.Tier));

    private static ushort RankOf(PolicyEntry e) => checked((ushort)e.Rank);
}
