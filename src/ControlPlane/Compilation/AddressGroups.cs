using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// Kubernetes ipBlocks over the cluster's own endpoints, exact per address.
//
// The datapath judges a peer by the identity its address has in the ipcache, and an endpoint's address has its label
// identity, which every endpoint with the same labels shares. An ipBlock selects the endpoints whose addresses it
// covers, so it matches an identity exactly when it admits every address of that identity. When the endpoints of one
// label identity differ in which ipBlocks admit them, the addresses of each differing group map to an address group
// instead (a node-local identity that carries the label identity's labels: every endpoint selector, the cluster entity
// and named ports treat it as that identity), and each ipBlock matches the groups it admits whole. Where the endpoints
// agree, nothing changes. An endpoint's own identity (what its own policy is selected by) never changes.
//
// Address groups are numbered cluster-wide, from the label identity and its groups alone, not per node like CIDR
// identities: the endpoint part of the ipcache and every policy compiled from labels then stay the same on every node
// (one ipcache delta for all, compiled policies shared), and a group costs no ipcache entry (it is the identity of an
// address the ipcache maps anyway). A cluster without pod-covering ipBlocks has no groups and pays nothing.

/// <summary>A Kubernetes ipBlock as a value: its prefix and its excepts (sorted, distinct), named by <see cref="Key"/>.</summary>
internal sealed class IpBlock : IEquatable<IpBlock>, IComparable<IpBlock>
{
    private IpBlock(CidrPrefix prefix, CidrPrefix[] except)
    {
        Prefix = prefix;
        Except = except;
        Key = except.Length == 0 ? prefix.ToString() : $"{prefix} except {string.Join(' ', except)}";
    }

    public CidrPrefix Prefix { get; }
    public CidrPrefix[] Except { get; }
    public string Key { get; }

    public static IpBlock Of(PeerSelector.Cidr peer) => new(peer.Prefix, peer.Except.Distinct().Order().ToArray());

    /// <summary>The ipBlocks (peers that select endpoints) a policy names anywhere.</summary>
    /// <remarks>Loops, not LINQ: every policy applied is looked through, and almost none has an ipBlock.</remarks>
    public static IReadOnlyList<IpBlock> In(NetworkPolicy policy)
    {
        List<IpBlock>? blocks = null;
        foreach (var spec in policy.Specs)
            foreach (var section in IdentityResolution.Sections)
            {
                var rules = spec.Rules(section);
                for (var r = 0; r < rules.Count; r++)
                {
                    if (rules[r].Peers is not { } peers) continue;
                    for (var p = 0; p < peers.Count; p++)
                        if (peers[p] is PeerSelector.Cidr { SelectsEndpoints: true } block) (blocks ??= []).Add(Of(block));
                }
            }
        return blocks ?? (IReadOnlyList<IpBlock>)[];
    }

    /// <summary>Whether every address of <paramref name="address"/> is inside the block and outside each except.</summary>
    public bool Admits(CidrPrefix address)
    {
        if (!Prefix.Contains(address)) return false;
        foreach (var except in Except)
            if (except.Contains(address) || address.Contains(except)) return false;
        return true;
    }

    public bool Equals(IpBlock? other) => other is not null && string.Equals(Key, other.Key, StringComparison.Ordinal);
    public override bool Equals(object? obj) => Equals(obj as IpBlock);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Key);
    public int CompareTo(IpBlock? other) => string.CompareOrdinal(Key, other?.Key);
    public override string ToString() => Key;
}

/// <summary>
/// IpBlocks by prefix: the blocks admitting an address are found with one lookup per prefix length in use, however
/// many blocks the policies name.
/// </summary>
internal sealed class IpBlockIndex
{
    private readonly Dictionary<CidrPrefix, List<IpBlock>> _byPrefix = [];
    private readonly int[] _lengths;

    public IpBlockIndex(IEnumerable<IpBlock> blocks)
    {
        foreach (var block in blocks.Distinct())
        {
            if (!_byPrefix.TryGetValue(block.Prefix, out var same)) _byPrefix[block.Prefix] = same = [];
            same.Add(block);
        }
        _lengths = _byPrefix.Keys.Select(p => p.Length).Distinct().Order().ToArray();
    }

    public static readonly IpBlockIndex Empty = new([]);

    public bool IsEmpty => _byPrefix.Count == 0;

    /// <summary>The blocks that admit an address, sorted: its signature (none for text that is no prefix).</summary>
    public IpBlock[] Admitting(IpCacheKey address)
    {
        if (IsEmpty || !address.Parsed) return [];
        List<IpBlock>? admitting = null;
        foreach (var length in _lengths)
        {
            if (length > address.Prefix.Length) break;
            if (!_byPrefix.TryGetValue(address.Prefix.Truncated(length), out var blocks)) continue;
            foreach (var block in blocks)
                if (block.Admits(address.Prefix)) (admitting ??= []).Add(block);
        }
        if (admitting is null) return [];
        admitting.Sort();
        return admitting.ToArray();
    }
}

/// <summary>
/// How the addresses of one label identity split by the ipBlocks admitting them: the addresses that move to address
/// groups, the groups, and which identity (the label identity, or a group) each block matches.
/// </summary>
internal sealed class AddressGrouping
{
    private AddressGrouping(Dictionary<string, uint> grouped, uint[] groups, (IpBlock Block, uint Identity)[] matches)
    {
        Grouped = grouped;
        Groups = groups;
        Matches = matches;
    }

    /// <summary>Address (ipcache CIDR) → its address group; the addresses not here keep the label identity.</summary>
    public Dictionary<string, uint> Grouped { get; }
    /// <summary>The address groups, sorted.</summary>
    public uint[] Groups { get; }
    /// <summary>Each block with an identity whose every address it admits.</summary>
    public (IpBlock Block, uint Identity)[] Matches { get; }

    /// <summary>Whether the ipcache's endpoint addresses of an identity can move to address groups of it.</summary>
    public static bool Applies(uint identity) => new NumericIdentity(identity).CanHaveAddressGroups;

    /// <summary>
    /// The grouping of a label identity's addresses, each with its signature (the blocks admitting it); null when no
    /// block admits any of them. Groups are numbered by signature order, so the same addresses and blocks give the
    /// same numbers whatever order they come in. The addresses no block admits keep the label identity; so do
    /// those past the last group number (a label identity split more than <see cref="NumericIdentity.MaxAddressGroup"/>
    /// ways), which then match only the blocks admitting all of them: fewer peers, never more.
    /// </summary>
    public static AddressGrouping? Of(uint identity, IReadOnlyList<(string Cidr, IpBlock[] Signature)> addresses)
    {
        if (addresses.All(a => a.Signature.Length == 0)) return null;
        var bySignature = addresses.GroupBy(a => string.Join('|', a.Signature.Select(b => b.Key)), StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (bySignature.Count == 1)
            return new AddressGrouping([], [], [.. addresses[0].Signature.Select(b => (b, identity))]);

        var grouped = new Dictionary<string, uint>(StringComparer.Ordinal);
        var groups = new List<uint>();
        var matches = new List<(IpBlock, uint)>();
        IpBlock[]? kept = null;   // the blocks admitting every address the label identity keeps
        var next = 1u;
        foreach (var signature in bySignature)
        {
            var blocks = signature.First().Signature;
            if (signature.Key.Length == 0 || next > NumericIdentity.MaxAddressGroup)
            {
                kept = kept is null ? blocks : [.. kept.Intersect(blocks)];
                continue;
            }
            var group = NumericIdentity.ForAddressGroup(new NumericIdentity(identity), next++).Value;
            groups.Add(group);
            foreach (var (cidr, _) in signature) grouped[cidr] = group;
            matches.AddRange(blocks.Select(b => (b, group)));
        }
        if (kept is not null) matches.AddRange(kept.Select(b => (b, identity)));
        return new AddressGrouping(grouped, [.. groups], [.. matches]);
    }
}

/// <summary>The address groups of the whole cluster, computed at once: what the full compile reads.</summary>
internal sealed class ClusterAddresses
{
    private readonly Dictionary<string, uint> _grouped = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, uint[]> _groups = [];
    private readonly Dictionary<IpBlock, List<uint>> _matching = [];

    private ClusterAddresses() { }

    public static readonly ClusterAddresses None = new();

    /// <param name="endpointEntries">The ipcache's endpoint and node addresses, each with the identity of whoever claims it.</param>
    public static ClusterAddresses Of(IEnumerable<IpBlock> blocks, IEnumerable<IpCacheEntry> endpointEntries)
    {
        var index = new IpBlockIndex(blocks);
        if (index.IsEmpty) return None;
        var addresses = new ClusterAddresses();
        foreach (var identity in endpointEntries.Where(e => AddressGrouping.Applies(e.Identity)).GroupBy(e => e.Identity))
        {
            var signatures = identity.Select(e => (e.Cidr, index.Admitting(new IpCacheKey(e.Cidr)))).ToList();
            if (AddressGrouping.Of(identity.Key, signatures) is not { } grouping) continue;
            foreach (var (cidr, group) in grouping.Grouped) addresses._grouped[cidr] = group;
            if (grouping.Groups.Length > 0) addresses._groups[identity.Key] = grouping.Groups;
            foreach (var (block, matched) in grouping.Matches)
            {
                if (!addresses._matching.TryGetValue(block, out var ids)) addresses._matching[block] = ids = [];
                ids.Add(matched);
            }
        }
        return addresses;
    }

    /// <summary>An endpoint address's ipcache entry: its address group, if it has one.</summary>
    public IpCacheEntry Published(IpCacheEntry entry) =>
        _grouped.TryGetValue(entry.Cidr, out var group) ? entry with { Identity = group } : entry;

    /// <summary>The address groups of a label identity (none for most).</summary>
    public uint[] GroupsOf(uint identity) => _groups.GetValueOrDefault(identity) ?? [];

    /// <summary>The identities (label identities and address groups) whose every address a block admits.</summary>
    public IReadOnlyList<uint> Matching(IpBlock block) => _matching.GetValueOrDefault(block) ?? (IReadOnlyList<uint>)[];
}
