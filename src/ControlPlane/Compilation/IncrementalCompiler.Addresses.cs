using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// Kubernetes ipBlocks over endpoint addresses (see AddressGroups.cs): the blocks the policies name, every label
// identity's addresses while any block exists, each identity's grouping, and which identities each block matches.
// A commit regroups exactly the identities whose addresses changed or that a new or removed block admits.
public sealed partial class IncrementalCompiler
{
    // Every ipBlock of every policy, with the number of peers naming it.
    private readonly Dictionary<IpBlock, int> _ipBlocks = [];
    private readonly HashSet<IpBlock> _ipBlocksChanged = [];
    private IpBlockIndex _ipBlockIndex = IpBlockIndex.Empty;
    // Label identity → its addresses in the cluster's ipcache. Kept only while some ipBlock exists (null otherwise), so
    // a cluster without ipBlocks pays nothing for them.
    private Dictionary<uint, Dictionary<string, IpCacheKey>>? _addressesOf;
    private readonly HashSet<uint> _addressesChanged = [];
    private readonly Dictionary<uint, AddressGrouping> _groupings = [];
    // Address → its address group, as published in the ipcache.
    private readonly Dictionary<string, uint> _grouped = new(StringComparer.Ordinal);
    private readonly Dictionary<IpBlock, BlockMatches> _blockMatches = [];
    // Identity → the ipBlocks its compiled policies matched: a change to what one matches recompiles it.
    private readonly Dictionary<uint, HashSet<IpBlock>> _ipBlocksUsedBy = [];

    /// <summary>The identities a block matches, and the identities whose compiled policies asked.</summary>
    private sealed class BlockMatches
    {
        private uint[]? _sorted;
        public HashSet<uint> Identities { get; } = [];
        public HashSet<uint> Users { get; } = [];
        public uint[] Sorted => _sorted ??= Identities.Order().ToArray();
        public void Changed() => _sorted = null;
        public bool IsUnused => Identities.Count == 0 && Users.Count == 0;
    }

    private void CountIpBlocks(NetworkPolicy policy, int delta)
    {
        foreach (var block in IpBlock.In(policy))
        {
            var count = _ipBlocks.GetValueOrDefault(block) + delta;
            if (count == 0) _ipBlocks.Remove(block);
            else _ipBlocks[block] = count;
            if (count == 0 || count == delta) _ipBlocksChanged.Add(block);   // gone, or new
        }
        if (_ipBlocks.Count > 0 && _addressesOf is null) TrackAddresses();
    }

    /// <summary>Starts following every label identity's addresses (the first ipBlock appeared).</summary>
    private void TrackAddresses()
    {
        _addressesOf = [];
        foreach (var (cidr, holders) in _holders) TrackAddress(new IpCacheKey(cidr), holders.First().Value);
    }

    /// <summary>An address now claimed for another identity (null: by nobody), while addresses are followed.</summary>
    private void MoveAddress(IpCacheKey key, uint? from, uint? to)
    {
        if (from == to) return;
        if (from is { } was && AddressGrouping.Applies(was) && _addressesOf!.TryGetValue(was, out var addresses))
        {
            addresses.Remove(key.Cidr);
            if (addresses.Count == 0) _addressesOf.Remove(was);
            _addressesChanged.Add(was);
        }
        if (to is { } now && TrackAddress(key, now)) _addressesChanged.Add(now);
    }

    private bool TrackAddress(IpCacheKey key, uint identity)
    {
        if (!AddressGrouping.Applies(identity)) return false;
        if (!_addressesOf!.TryGetValue(identity, out var addresses)) _addressesOf[identity] = addresses = new(StringComparer.Ordinal);
        addresses[key.Cidr] = key;
        return true;
    }

    /// <summary>The ipcache identity of an address claimed for <paramref name="identity"/>: its address group, if it has one.</summary>
    private uint Published(string cidr, uint identity) =>
        // A group of the identity that claimed the address before is stale until the commit regroups: skip it.
        _grouped.Count > 0 && _grouped.TryGetValue(cidr, out var group) && new NumericIdentity(group).LabelIdentity.Value == identity ? group : identity;

    /// <summary>
    /// Regroups the identities whose addresses changed or that a new or removed ipBlock admits, and passes on what
    /// moved: ipcache entries, the groups endpoint selectors and the cluster entity expand to, and block matches.
    /// </summary>
    private void RegroupAddresses()
    {
        if (_addressesOf is null) return;
        if (_ipBlocksChanged.Count > 0)
        {
            _ipBlockIndex = new IpBlockIndex(_ipBlocks.Keys);
            foreach (var (id, addresses) in _addressesOf)
                if (addresses.Values.Any(a => a.Parsed && _ipBlocksChanged.Any(b => b.Admits(a.Prefix)))) _addressesChanged.Add(id);
            _ipBlocksChanged.Clear();
        }
        foreach (var id in _addressesChanged) Regroup(id);
        _addressesChanged.Clear();
        if (_ipBlocks.Count == 0) _addressesOf = null;   // every grouping is gone with the last block
    }

    private void Regroup(uint identity)
    {
        var addresses = _addressesOf!.GetValueOrDefault(identity);
        var now = addresses is null ? null
            : AddressGrouping.Of(identity, addresses.Select(a => (a.Key, _ipBlockIndex.Admitting(a.Value))).ToList());
        var was = _groupings.GetValueOrDefault(identity);
        if (was is null && now is null) return;
        if (now is null) _groupings.Remove(identity);
        else _groupings[identity] = now;

        // An address that left this identity may already be grouped by the identity that claims it now: only this
        // identity's own groups are taken back.
        foreach (var (cidr, group) in was?.Grouped ?? [])
            if (now?.Grouped.ContainsKey(cidr) != true && _grouped.GetValueOrDefault(cidr) == group)
            {
                _grouped.Remove(cidr);
                Republish(cidr);
            }
        foreach (var (cidr, group) in now?.Grouped ?? [])
            if (_grouped.GetValueOrDefault(cidr) != group)
            {
                _grouped[cidr] = group;
                Republish(cidr);
            }

        if (!(was?.Groups ?? []).AsSpan().SequenceEqual(now?.Groups ?? []) && _identities.TryGetValue(identity, out var labels))
        {
            // Whatever admits the label identity admits its groups: the selections holding it and the cluster entity.
            foreach (var selection in _peerIndex.Candidates(labels))
                if (selection.Matched.Contains(identity)) Invalidate(selection);
            if (PeerResolver.IsClusterLabelIdentity(identity))
            {
                _cluster = null;
                _compileDirty.UnionWith(_clusterUsers);
            }
        }

        var before = was?.Matches.ToHashSet() ?? [];
        var after = now?.Matches.ToHashSet() ?? [];
        foreach (var (block, id) in before.Where(m => !after.Contains(m))) MatchesChanged(block, m => m.Identities.Remove(id));
        foreach (var (block, id) in after.Where(m => !before.Contains(m))) MatchesChanged(block, m => m.Identities.Add(id));
    }

    private void Republish(string cidr) => Publish(new IpCacheKey(cidr), _holders.TryGetValue(cidr, out var holders) ? holders.First().Value : null);

    private void MatchesChanged(IpBlock block, Action<BlockMatches> change)
    {
        var matches = BlockMatchesOf(block);
        change(matches);
        matches.Changed();
        _compileDirty.UnionWith(matches.Users);
        if (matches.IsUnused) _blockMatches.Remove(block);
    }

    private BlockMatches BlockMatchesOf(IpBlock block)
    {
        if (!_blockMatches.TryGetValue(block, out var matches)) _blockMatches[block] = matches = new BlockMatches();
        return matches;
    }

    /// <summary>
    /// The identities a block matches as of the last regrouping. A block no policy named then (one a budget check
    /// tries) matches none yet: the estimate leaves out its endpoints.
    /// </summary>
    private uint[] IpBlockMatches(IpBlock block) => _blockMatches.TryGetValue(block, out var matches) ? matches.Sorted : [];

    /// <summary>The address groups of a label identity (none for most).</summary>
    private uint[] AddressGroupsOf(uint identity) => _groupings.TryGetValue(identity, out var grouping) ? grouping.Groups : [];

    private void UseIpBlock(uint identity, IpBlock block)
    {
        if (!_ipBlocksUsedBy.TryGetValue(identity, out var blocks)) _ipBlocksUsedBy[identity] = blocks = [];
        if (blocks.Add(block)) BlockMatchesOf(block).Users.Add(identity);
    }

    private void ReleaseIpBlocks(uint identity)
    {
        if (!_ipBlocksUsedBy.Remove(identity, out var blocks)) return;
        foreach (var block in blocks)
            if (_blockMatches.TryGetValue(block, out var matches) && matches.Users.Remove(identity) && matches.IsUnused) _blockMatches.Remove(block);
    }
}
