using System.Runtime.InteropServices;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Compilation;

// The cluster-wide part of every node's ipcache (endpoint and node addresses), and snapshots of nodes as of the last commit.
public sealed partial class IncrementalCompiler
{
    private readonly Dictionary<string, ClusterNode> _clusterNodes = new(StringComparer.Ordinal);
    // Address (host CIDR text) → the endpoints (and nodes) claiming it, by id: the first id wins, as in the full compile.
    private readonly Dictionary<string, SortedDictionary<string, uint>> _holders = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IpCacheEntry> _ipByCidr = new(StringComparer.Ordinal);
    private readonly SortedDictionary<IpCacheKey, IpCacheEntry> _ipCache = [];
    // Normalized prefixes endpoints hold: a node's CIDR identity for the same prefix stays out of its ipcache.
    private readonly Dictionary<string, int> _taken = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IpCacheEntry?> _ipBeforeCommit = new(StringComparer.Ordinal);
    private SetDigest _ipDigest;
    private IpCacheEntry[]? _ipSorted;

    private void AddAddress(CompilerEndpoint endpoint) => AddAddress(endpoint.Id, endpoint.Ip, endpoint.Identity);

    private void RemoveAddress(CompilerEndpoint endpoint) => RemoveAddress(endpoint.Id, endpoint.Ip);

    /// <summary>Sets a node's addresses to remote-node; the addresses it no longer has go back to whoever else claims them.</summary>
    public void RegisterNode(ClusterNode node)
    {
        var old = _clusterNodes.GetValueOrDefault(node.Name)?.Addresses ?? [];
        foreach (var ip in old.Except(node.Addresses)) RemoveAddress(node.AddressHolder, ip);
        foreach (var ip in node.Addresses.Except(old)) AddAddress(node.AddressHolder, ip, NumericIdentity.RemoteNode.Value);
        _clusterNodes[node.Name] = node;
    }

    /// <summary>Every node that registered its addresses.</summary>
    public IReadOnlyCollection<ClusterNode> ClusterNodes => _clusterNodes.Values;

    private void AddAddress(string holder, string ip, uint identity)
    {
        var cidr = SnapshotAssembly.HostCidr(ip);
        var key = new IpCacheKey(cidr);   // parsed once: 50,000 endpoints register in a full compile
        if (!_holders.TryGetValue(cidr, out var holders))
        {
            _holders[cidr] = holders = new SortedDictionary<string, uint>(StringComparer.Ordinal);
            var normalized = key.Normalized;
            _taken[normalized] = _taken.GetValueOrDefault(normalized) + 1;
        }
        var before = Claimant(holders);
        holders[holder] = identity;
        SetAddress(key, holders, before);
    }

    private void RemoveAddress(string holder, string ip)
    {
        var cidr = SnapshotAssembly.HostCidr(ip);
        var key = new IpCacheKey(cidr);
        var holders = _holders[cidr];
        var before = Claimant(holders);
        holders.Remove(holder);
        if (holders.Count == 0)
        {
            _holders.Remove(cidr);
            var normalized = key.Normalized;
            if (--_taken[normalized] == 0) _taken.Remove(normalized);
        }
        SetAddress(key, holders, before);
    }

    /// <summary>The identity an address is claimed for (the first id wins), when addresses are followed for ipBlocks.</summary>
    private uint? Claimant(SortedDictionary<string, uint> holders) =>
        _addressesOf is null || holders.Count == 0 ? null : holders.First().Value;

    private void SetAddress(IpCacheKey key, SortedDictionary<string, uint> holders, uint? claimedBefore)
    {
        uint? claimant = holders.Count == 0 ? null : holders.First().Value;   // the first id wins
        if (_addressesOf is not null) MoveAddress(key, claimedBefore, claimant);
        Publish(key, claimant);
    }

    /// <summary>Sets an address's entry in the cluster's ipcache: its claimant's identity (or address group), or none.</summary>
    private void Publish(IpCacheKey key, uint? claimant)
    {
        var cidr = key.Cidr;
        var was = _ipByCidr.GetValueOrDefault(cidr);
        var now = claimant is { } identity ? new IpCacheEntry(cidr, Published(cidr, identity)) : null;
        if (was == now) return;
        _ipBeforeCommit.TryAdd(cidr, was);
        _ipSorted = null;
        if (was is not null)
        {
            ContentDigest.Toggle(ref _ipDigest, was, remove: true);
            _ipByCidr.Remove(cidr);
            _ipCache.Remove(key);
        }
        if (now is not null)
        {
            ContentDigest.Toggle(ref _ipDigest, now, remove: false);
            _ipByCidr[cidr] = now;
            _ipCache[key] = now;
        }
    }

    /// <summary>The endpoint ipcache entries added and removed since the last commit (a changed one is in both).</summary>
    private (List<IpCacheEntry> Added, List<IpCacheEntry> Removed) ClusterIpCacheDelta()
    {
        var added = new List<IpCacheEntry>();
        var removed = new List<IpCacheEntry>();
        foreach (var (cidr, was) in _ipBeforeCommit)
        {
            var now = _ipByCidr.GetValueOrDefault(cidr);
            if (was == now) continue;
            if (was is not null) removed.Add(was);
            if (now is not null) added.Add(now);
        }
        _ipBeforeCommit.Clear();
        return (InKeyOrder(added), InKeyOrder(removed));
    }

    /// <summary>
    /// The entries in ipcache order, each CIDR parsed once: a full compile adds 50,000 of them, and parsing both sides
    /// of every comparison was a tenth of it.
    /// </summary>
    private static List<IpCacheEntry> InKeyOrder(List<IpCacheEntry> entries)
    {
        var keys = entries.Select(e => new IpCacheKey(e.Cidr)).ToArray();
        keys.AsSpan().Sort(CollectionsMarshal.AsSpan(entries));
        return entries;
    }

    /// <summary>The content hash of a node as of the last commit.</summary>
    public string ContentHash(string node) => Published(node).ContentHash;

    /// <summary>
    /// The node's snapshot as of the last commit, equal to <see cref="PolicyCompiler.Compile"/> of the same inputs.
    /// Built on demand (the ipcache alone holds every endpoint of the cluster) and kept until the node changes.
    /// </summary>
    public NodeSnapshot Snapshot(string node)
    {
        var state = Published(node);
        if (state.Materialized is { } cached && cached.Version == Version) return cached;
        var cluster = _ipSorted ??= _ipCache.Values.ToArray();
        var ipCache = Merge(cluster, state.PublishedLocalIpCache);
        var ipDigest = _ipDigest;
        ipDigest.Add(state.LocalIpCacheDigest);
        var policies = state.PublishedPolicies.OrderBy(p => p.Key).Select(p => p.Value).ToList();
        var snapshot = SnapshotAssembly.Build(state.Name, Version, ipCache, state.PublishedFqdns,
            state.PublishedEndpoints.Values.Order(SnapshotAssembly.EndpointOrder).ToList(), policies, ipDigest);
        state.Materialized = snapshot;
        return snapshot;
    }

    /// <summary>A node as of the last commit; a node never seen holds only the cluster's ipcache.</summary>
    private NodeState Published(string node)
    {
        if (_nodes.TryGetValue(node, out var state)) return state;
        var empty = new NodeState(node);
        Rehash(empty);
        return empty;
    }

    private static List<IpCacheEntry> Merge(IpCacheEntry[] cluster, List<IpCacheEntry> local)
    {
        if (local.Count == 0) return [.. cluster];
        var sortedLocal = local.OrderBy(e => new IpCacheKey(e.Cidr)).ToList();
        var merged = new List<IpCacheEntry>(cluster.Length + local.Count);
        var (i, j) = (0, 0);
        while (i < cluster.Length || j < sortedLocal.Count)
        {
            if (j >= sortedLocal.Count || (i < cluster.Length && new IpCacheKey(cluster[i].Cidr).CompareTo(new IpCacheKey(sortedLocal[j].Cidr)) <= 0))
                merged.Add(cluster[i++]);
            else merged.Add(sortedLocal[j++]);
        }
        return merged;
    }
}
