using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>What the incremental compiler knows about one identity: who selects it, where it is local, its policy.</summary>
internal sealed class IdentityState(uint id)
{
    public uint Id { get; } = id;
    public HashSet<SubjectSelection> Subjects { get; } = [];
    public HashSet<SpecRef> SelectedBy { get; } = [];
    /// <summary>Node → number of endpoints of this identity on it.</summary>
    public Dictionary<string, int> Nodes { get; } = new(StringComparer.Ordinal);

    /// <summary>The CIDR and DNS peers of the specs selecting it: what it adds to its nodes' local identities.</summary>
    public PeerSelector[] NodePeers { get; set; } = [];
    /// <summary>Whether its entries depend on a node's numbering of local identities (CIDR, DNS or world peers).</summary>
    public bool DependsOnNode { get; set; }

    /// <summary>The policy when it does not depend on the node.</summary>
    public CompiledPolicy? Shared { get; set; }
    /// <summary>The policy per node numbering (LocalIdentities.Key) when it does.</summary>
    public Dictionary<string, CompiledPolicy>? ByNumbering { get; set; }
    public HashSet<PeerSelection> Uses { get; } = [];
    public bool UsesCluster { get; set; }
    /// <summary>The named-port lookups its compiled policies made (found or not): a change to one recompiles it.</summary>
    public HashSet<NamedPortKey> NamedPortUses { get; } = [];

    public CompiledPolicy For(LocalIdentities locals) => Shared ?? ByNumbering![locals.Key];

    public IEnumerable<CompiledPolicy> Compiled => Shared is { } shared ? [shared] : ByNumbering?.Values ?? Enumerable.Empty<CompiledPolicy>();
}

/// <summary>One node: its endpoints and local identities now, and what it was at the last commit (for deltas).</summary>
internal sealed class NodeState(string name)
{
    public string Name { get; } = name;
    public SortedDictionary<string, LocalEndpoint> Endpoints { get; } = new(StringComparer.Ordinal);
    /// <summary>Local identity → number of its endpoints here.</summary>
    public SortedDictionary<uint, int> Identities { get; } = [];
    public LocalIdentities Locals { get; set; } = LocalIdentities.None;

    // As of the last commit.
    public Dictionary<string, LocalEndpoint> PublishedEndpoints { get; } = new(StringComparer.Ordinal);
    public Dictionary<uint, CompiledPolicy> PublishedPolicies { get; } = [];
    public List<IpCacheEntry> PublishedLocalIpCache { get; set; } = [];
    public SetDigest LocalIpCacheDigest { get; set; }
    public IReadOnlyList<FqdnSelector> PublishedFqdns { get; set; } = [];
    public SetDigest FqdnsDigest { get; set; }
    public SetDigest EndpointsDigest { get; set; }
    public SetDigest PoliciesDigest { get; set; }
    public string ContentHash { get; set; } = "";
    public NodeSnapshot? Materialized { get; set; }
    /// <summary>What the last commit that changed this node changed (a delta is built from it only when asked).</summary>
    public NodeChange? Change { get; set; }
}

/// <summary>One commit's change to one node, by reference to what was published before: cheap to record for 1,000 nodes.</summary>
internal sealed class NodeChange(long from, long to)
{
    public long From { get; } = from;
    public long To { get; } = to;
    // Created on first use: most commits change one or two of these on each of hundreds of nodes.
    private List<LocalEndpoint>? _endpointsAdded, _endpointsRemoved;
    private Dictionary<uint, CompiledPolicy?>? _policiesBefore;
    private List<IpCacheEntry>? _localIpCacheAdded, _localIpCacheRemoved;
    private List<FqdnSelector>? _fqdnsAdded, _fqdnsRemoved;

    public List<LocalEndpoint> EndpointsAdded => _endpointsAdded ??= [];
    public List<LocalEndpoint> EndpointsRemoved => _endpointsRemoved ??= [];
    /// <summary>Identity → its policy before the commit (null: it was not local).</summary>
    public Dictionary<uint, CompiledPolicy?> PoliciesBefore => _policiesBefore ??= [];
    public List<IpCacheEntry> LocalIpCacheAdded => _localIpCacheAdded ??= [];
    public List<IpCacheEntry> LocalIpCacheRemoved => _localIpCacheRemoved ??= [];
    public List<FqdnSelector> FqdnsAdded => _fqdnsAdded ??= [];
    public List<FqdnSelector> FqdnsRemoved => _fqdnsRemoved ??= [];
    public NodeDelta? Delta { get; set; }

    public bool IsEmpty => (_endpointsAdded?.Count ?? 0) == 0 && (_endpointsRemoved?.Count ?? 0) == 0 && (_policiesBefore?.Count ?? 0) == 0
        && (_localIpCacheAdded?.Count ?? 0) == 0 && (_localIpCacheRemoved?.Count ?? 0) == 0
        && (_fqdnsAdded?.Count ?? 0) == 0 && (_fqdnsRemoved?.Count ?? 0) == 0;
}

/// <summary>One compile a commit plans: an identity for one numbering (or shared), and what it produced.</summary>
internal sealed class CompileJob(IdentityState state, List<SelectingSpec> specs, LocalIdentities locals, bool shared)
{
    public IdentityState State { get; } = state;
    public List<SelectingSpec> Specs { get; } = specs;
    public LocalIdentities Locals { get; } = locals;
    public bool Shared { get; } = shared;
    public CompiledPolicy? Result { get; set; }
    public IncrementalPeers? Peers { get; set; }
    /// <summary>The job with the same specs and numbering whose result this one shares (null: it compiles).</summary>
    public CompileJob? Leader { get; set; }
}

/// <summary>The compiles of one commit, in plan order, and the identities already planned.</summary>
internal sealed class CompileJobs : List<CompileJob>
{
    public HashSet<IdentityState> Planned { get; } = [];
}

/// <summary>
/// Peer and named-port lookups of the incremental compiler for one compile: records which cached selections, ipBlocks
/// and named ports it used.
/// </summary>
internal sealed class IncrementalPeers(Func<LabelSelector, IReadOnlyList<LabelSelector>, bool, PeerSelection> selections,
    Func<NetworkPolicy, LabelSelector, LabelSelector> scope, Func<uint[]> cluster, Func<uint, uint[]>? addressGroups,
    Func<IpBlock, uint[]> ipBlockMatches, INamedPorts namedPorts, bool record)
    : IPeerMatcher, INamedPorts
{
    private static readonly uint[] AnyPeer = [PolicyEntryKey.AnyPeer];
    private LocalIdentities _locals = LocalIdentities.None;

    public HashSet<PeerSelection> Used { get; } = [];
    /// <summary>The ipBlocks looked up (null: none, most compiles).</summary>
    public HashSet<IpBlock>? UsedIpBlocks { get; private set; }
    public bool UsedCluster { get; private set; }
    /// <summary>Peers' and the cluster's named ports looked up (always recorded: an empty answer is a dependency too).</summary>
    public HashSet<NamedPortKey> NamedPortsUsed { get; } = [];
    /// <summary>Names looked up among the subject's own ports.</summary>
    public HashSet<string> SubjectPortNamesUsed { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<NumberedPort> OfSubject(uint identity, string name)
    {
        SubjectPortNamesUsed.Add(name);
        return namedPorts.OfSubject(identity, name);
    }

    public IReadOnlyList<NumberedPort> OfPeer(uint identity, string name)
    {
        NamedPortsUsed.Add(new NamedPortKey(identity, name));
        return namedPorts.OfPeer(identity, name);
    }

    public IReadOnlyList<NumberedPort> InCluster(string name)
    {
        NamedPortsUsed.Add(new NamedPortKey(null, name));
        return namedPorts.InCluster(name);
    }

    public IncrementalPeers For(LocalIdentities locals)
    {
        _locals = locals;
        return this;
    }

    public IReadOnlyList<uint> Matching(NetworkPolicy policy, PeerSelector peer, IReadOnlyList<LabelSelector> requires)
    {
        switch (peer)
        {
            case PeerSelector.Endpoints e:
                var selector = scope(policy, e.Selector);
                // An empty selector (only possible in a cluster-wide policy) is Cilium's wildcard: every peer, world included.
                if (selector.IsEmpty && requires.Count == 0) return AnyPeer;
                var selection = selections(selector, requires, record);
                if (record) Used.Add(selection);
                return selection.Peers(addressGroups);
            case PeerSelector.EntityPeer { Entity: Entity.World }:
                return _locals.World;
            case PeerSelector.EntityPeer { Entity: Entity.Cluster }:
                UsedCluster = true;
                return cluster();
            case PeerSelector.EntityPeer x:
                return PeerResolver.FixedEntity(x.Entity);
            case PeerSelector.Cidr { SelectsEndpoints: true } c:
                var block = IpBlock.Of(c);
                if (record) (UsedIpBlocks ??= []).Add(block);
                return [.. _locals.Matching(c), .. ipBlockMatches(block)];
            case PeerSelector.Cidr c:
                return _locals.Matching(c);
            case PeerSelector.Fqdn f:
                return [_locals.Of(f.Match)];
            default:
                return [];
        }
    }
}

/// <summary>A peer matcher narrowed to some peers: resolves only the entries whose peer is one of them.</summary>
internal sealed class OnlyPeers(IPeerMatcher inner, HashSet<uint> peers) : IPeerMatcher
{
    public IReadOnlyList<uint> Matching(NetworkPolicy policy, PeerSelector peer, IReadOnlyList<LabelSelector> requires)
    {
        var all = inner.Matching(policy, peer, requires);
        List<uint>? only = null;
        foreach (var id in all) if (peers.Contains(id)) (only ??= []).Add(id);
        return only ?? (IReadOnlyList<uint>)[];
    }
}
