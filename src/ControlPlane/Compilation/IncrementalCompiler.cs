using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Keeps every node's snapshot compiled while the desired state changes one fact at a time, recomputing only what
/// a change touches. An identity's policy is the same on every node (unless it names CIDRs, DNS names or the world,
/// whose identities are numbered per node), so it is compiled once per identity and shared; the ipcache is
/// cluster-wide plus each node's CIDR identities. Caches: selector → identities it matches (updated as identities
/// appear), policy spec → identities it selects, peer selector → identities whose entries used it, port name (of
/// an identity's endpoints, or of the cluster's) → identities whose entries looked it up, Kubernetes ipBlock →
/// identities (label identities and address groups) it matches and identities whose entries used it.
/// <para>
/// Changes (<see cref="ApplyPolicy"/>, <see cref="AllocateIdentity"/>, <see cref="RegisterEndpoint"/> …) are
/// buffered; <see cref="Commit"/> recompiles what they touched and yields each node's delta from the previous
/// version. <see cref="Snapshot"/> equals <see cref="PolicyCompiler.Compile"/> for the same inputs. Not thread-safe:
/// one owner drives it.
/// </para>
/// </summary>
public sealed partial class IncrementalCompiler
{
    /// <summary>Cilium's default policy map size per endpoint.</summary>
    public const int DefaultEntryBudget = 16384;

    public IncrementalCompiler(int entryBudget = DefaultEntryBudget)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(entryBudget, 1);
        EntryBudget = entryBudget;
    }

    /// <summary>The most entries one local identity may have (one endpoint's policy map).</summary>
    public int EntryBudget { get; }

    /// <summary>
    /// From how many compiles, or nodes to publish, a commit spreads them over every core; below it, starting
    /// workers costs more than it saves.
    /// </summary>
    internal int ParallelFrom { get; init; } = 64;

    /// <summary>The version of the last <see cref="Commit"/>; snapshots and deltas are as of it.</summary>
    public long Version { get; private set; }

    // The desired state.
    private readonly Dictionary<string, NetworkPolicy> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, LabelSet> _identities = [];
    private readonly Dictionary<string, CompilerEndpoint> _endpoints = new(StringComparer.Ordinal);

    // Selection caches.
    private readonly LabelIndex _labels = new();
    private readonly Dictionary<LabelSelector, SubjectSelection> _subjects = [];
    private readonly SelectionIndex<SubjectSelection> _subjectIndex = new();
    private readonly Dictionary<PeerKey, PeerSelection> _peers = [];
    private readonly HashSet<PeerSelection> _unusedPeerSelections = [];   // may have no users: looked at on commit
    private readonly SelectionIndex<PeerSelection> _peerIndex = new();
    private readonly Dictionary<uint, IdentityState> _states = [];
    private readonly HashSet<uint> _untabled = [];   // identities of endpoints that the table does not (yet) hold
    private readonly HashSet<uint> _clusterUsers = [];
    private uint[]? _cluster;
    private readonly Dictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);

    // Named ports: what endpoints serve under each name, and which identities' policies looked a name up where.
    private readonly NamedPortTable _namedPorts = new(trackChanges: true);
    private readonly Dictionary<NamedPortKey, HashSet<uint>> _namedPortUsers = [];

    // What changed since the last commit.
    private readonly HashSet<uint> _selectionDirty = [];
    private readonly HashSet<uint> _compileDirty = [];
    private readonly Dictionary<uint, HashSet<uint>> _newPeers = [];   // identity → peers that just appeared in its selections
    private readonly HashSet<NodeState> _nodesDirty = [];

    public IReadOnlyCollection<NetworkPolicy> Policies => _policies.Values;

    /// <summary>The cluster's enforcement mode the policies are compiled under.</summary>
    public EnforcementMode EnforcementMode { get; private set; }
    public IReadOnlyDictionary<uint, LabelSet> Identities => _identities;
    public IReadOnlyCollection<CompilerEndpoint> Endpoints => _endpoints.Values;

    /// <summary>Every node that has held an endpoint: the nodes with content of their own.</summary>
    public IReadOnlyCollection<string> NodeNames => _nodes.Keys;

    /// <summary>Creates or replaces a policy (keyed by its <see cref="NetworkPolicy.Reference"/>: kind, namespace and name).</summary>
    public void ApplyPolicy(NetworkPolicy policy)
    {
        var key = policy.Reference;
        if (_policies.TryGetValue(key, out var old))
        {
            Unselect(key, old);
            CountIpBlocks(old, -1);
        }
        _policies[key] = policy;
        Select(key, policy);
        CountIpBlocks(policy, +1);
    }

    public void DeletePolicy(PolicyKind kind, string? ns, string name)
    {
        var key = NetworkPolicy.ReferenceOf(kind, ns, name);
        if (!_policies.Remove(key, out var old)) return;
        Unselect(key, old);
        CountIpBlocks(old, -1);
    }

    /// <summary>Sets the cluster's enforcement mode: every identity with endpoints recompiles under it.</summary>
    public void SetEnforcementMode(EnforcementMode mode)
    {
        if (mode == EnforcementMode) return;
        EnforcementMode = mode;
        foreach (var state in _states.Values) if (state.Nodes.Count > 0) _compileDirty.Add(state.Id);
    }

    /// <summary>Records the labels of an identity (new, or with new labels).</summary>
    public void AllocateIdentity(uint identity, LabelSet labels)
    {
        var oldPeerLabels = PeerLabels(identity);
        if (_identities.TryGetValue(identity, out var old))
        {
            if (old == labels) return;
            _labels.Remove(identity, old);
        }
        _identities[identity] = labels;
        _labels.Add(identity, labels);
        _untabled.Remove(identity);
        Reselect(State(identity), labels);
        if (identity != PolicyEntryKey.AnyPeer) Repeer(identity, oldPeerLabels, labels);
        if (old is null && PeerResolver.IsClusterLabelIdentity(identity))
        {
            // A new array with the identity inserted in order (one handed out is never changed): rebuilding it from
            // every identity cost about half a millisecond of each new identity's commit at 6,000 identities.
            if (_cluster is { } cluster)
                foreach (var id in AddressGroupsOf(identity).Prepend(identity)) _cluster = cluster = WithIdentity(cluster, id);
            _compileDirty.UnionWith(_clusterUsers);
        }
    }

    /// <summary>
    /// Forgets a released identity (no endpoint has it any more): no selector admits it as a peer, so no entry names
    /// it, as in a compile of the table without it. Its number may be allocated again, to other labels.
    /// </summary>
    public void ReleaseIdentity(uint identity)
    {
        if (!_identities.Remove(identity, out var old)) return;
        _labels.Remove(identity, old);
        if (_states.TryGetValue(identity, out var state))
        {
            foreach (var selection in state.Subjects) selection.Matched.Remove(identity);
            state.Subjects.Clear();
            state.SelectedBy.Clear();
            _selectionDirty.Add(identity);
            // An endpoint ahead of its identity's allocation keeps the identity, without labels, as before it was allocated.
            if (state.Nodes.Count > 0) { _untabled.Add(identity); Reselect(state, LabelSet.Empty); }
        }
        // A reserved identity goes back to the label of its own that peer selectors see without a table entry.
        if (PeerResolver.Reserved.TryGetValue(identity, out var reserved)) Repeer(identity, old, reserved);
        else
            foreach (var selection in _peers.Values.Where(s => s.Matched.Contains(identity)).ToList())
            {
                selection.Matched.Remove(identity);
                Invalidate(selection);
            }
        if (PeerResolver.IsClusterLabelIdentity(identity))
        {
            _cluster = null;
            _compileDirty.UnionWith(_clusterUsers);
        }
    }

    /// <summary>Creates an endpoint, or moves, relabels (new identity) or re-addresses one, by id.</summary>
    public void RegisterEndpoint(CompilerEndpoint endpoint)
    {
        if (_endpoints.TryGetValue(endpoint.Id, out var old))
        {
            if (old == endpoint) return;
            RemoveEndpoint(old);
        }
        _endpoints[endpoint.Id] = endpoint;
        var node = Node(endpoint.Node);
        node.Endpoints[endpoint.Id] = new LocalEndpoint(endpoint.Id, endpoint.Interface, endpoint.Ip, endpoint.Identity);
        node.Identities[endpoint.Identity] = node.Identities.GetValueOrDefault(endpoint.Identity) + 1;
        _nodesDirty.Add(node);
        var state = State(endpoint.Identity);
        // An endpoint ahead of its identity's allocation (or after its release) is selected as an identity without labels.
        if (!_identities.ContainsKey(endpoint.Identity) && _untabled.Add(endpoint.Identity)) Reselect(state, LabelSet.Empty);
        if (state.Nodes.Count == 0) _compileDirty.Add(state.Id);
        state.Nodes[node.Name] = state.Nodes.GetValueOrDefault(node.Name) + 1;
        AddAddress(endpoint);
        _namedPorts.Add(endpoint);
    }

    public void DeleteEndpoint(string id)
    {
        if (_endpoints.Remove(id, out var old)) RemoveEndpoint(old);
    }

    private void RemoveEndpoint(CompilerEndpoint endpoint)
    {
        _endpoints.Remove(endpoint.Id);
        var node = Node(endpoint.Node);
        node.Endpoints.Remove(endpoint.Id);
        if (--node.Identities[endpoint.Identity] == 0) node.Identities.Remove(endpoint.Identity);
        _nodesDirty.Add(node);
        var state = _states[endpoint.Identity];
        if (--state.Nodes[node.Name] == 0)
        {
            state.Nodes.Remove(node.Name);
            if (state.Nodes.Count == 0) _compileDirty.Add(state.Id);
        }
        RemoveAddress(endpoint);
        _namedPorts.Remove(endpoint);
    }

    private IdentityState State(uint identity)
    {
        if (!_states.TryGetValue(identity, out var state)) _states[identity] = state = new IdentityState(identity);
        return state;
    }

    private NodeState Node(string name)
    {
        if (!_nodes.TryGetValue(name, out var node)) _nodes[name] = node = new NodeState(name);
        return node;
    }

    /// <summary>The labels a peer selector sees: the table's, else a reserved identity's own label.</summary>
    private LabelSet? PeerLabels(uint identity) =>
        identity == PolicyEntryKey.AnyPeer ? null
        : _identities.GetValueOrDefault(identity) ?? PeerResolver.Reserved.GetValueOrDefault(identity);

    private LabelSet SubjectLabels(uint identity) => _identities.GetValueOrDefault(identity) ?? LabelSet.Empty;

    private void Select(string key, NetworkPolicy policy)
    {
        for (var i = 0; i < policy.Specs.Count; i++)
        {
            var selection = Subject(policy.EffectiveEndpointSelector(policy.Specs[i]));
            var spec = new SpecRef(key, i);
            selection.Specs.Add(spec);
            foreach (var id in selection.Matched)
            {
                _states[id].SelectedBy.Add(spec);
                _selectionDirty.Add(id);
            }
        }
    }

    private void Unselect(string key, NetworkPolicy policy)
    {
        for (var i = 0; i < policy.Specs.Count; i++)
        {
            var selector = policy.EffectiveEndpointSelector(policy.Specs[i]);
            var selection = _subjects[selector];
            var spec = new SpecRef(key, i);
            selection.Specs.Remove(spec);
            foreach (var id in selection.Matched)
            {
                _states[id].SelectedBy.Remove(spec);
                _selectionDirty.Add(id);
            }
            if (selection.Specs.Count == 0)
            {
                _subjects.Remove(selector);
                _subjectIndex.Remove(selection, [selector]);
                foreach (var id in selection.Matched) _states[id].Subjects.Remove(selection);
            }
        }
    }

    /// <summary>The cached selection of an endpoint selector, evaluated over every identity on first use.</summary>
    private SubjectSelection Subject(LabelSelector selector)
    {
        if (_subjects.TryGetValue(selector, out var selection)) return selection;
        selection = new SubjectSelection(selector);
        _subjects[selector] = selection;
        _subjectIndex.Add(selection, [selector]);
        foreach (var id in (_labels.Candidates([selector]) ?? _identities.Keys).Concat(_untabled))
        {
            if (!selector.Matches(SubjectLabels(id))) continue;
            selection.Matched.Add(id);
            State(id).Subjects.Add(selection);
        }
        return selection;
    }

    /// <summary>Re-evaluates which endpoint selectors select an identity whose labels are new.</summary>
    private void Reselect(IdentityState state, LabelSet labels)
    {
        var now = _subjectIndex.Candidates(labels);
        now.RemoveWhere(s => !s.Selector.Matches(labels));
        foreach (var gone in state.Subjects.Where(s => !now.Contains(s)).ToList())
        {
            gone.Matched.Remove(state.Id);
            state.Subjects.Remove(gone);
            state.SelectedBy.ExceptWith(gone.Specs);
            _selectionDirty.Add(state.Id);
        }
        foreach (var added in now.Where(s => !state.Subjects.Contains(s)))
        {
            added.Matched.Add(state.Id);
            state.Subjects.Add(added);
            state.SelectedBy.UnionWith(added.Specs);
            _selectionDirty.Add(state.Id);
        }
    }

    /// <summary>Re-evaluates the cached peer selections for an identity whose labels are new; their users recompile.</summary>
    private void Repeer(uint identity, LabelSet? oldLabels, LabelSet labels)
    {
        var now = _peerIndex.Candidates(labels);
        now.RemoveWhere(s => !s.Matches(labels));
        if (oldLabels is not null)
        {
            // Rare (a reserved identity entering the table, or relabelled): look through every selection.
            foreach (var selection in _peers.Values.Where(s => s.Matched.Contains(identity) && !now.Contains(s)))
            {
                selection.Matched.Remove(identity);
                Invalidate(selection);
            }
        }
        // Patching in a new peer assumes no compiled policy names it yet; an ipBlock may name one that has addresses.
        var unnamed = oldLabels is null && !_groupings.ContainsKey(identity);
        foreach (var selection in now.Where(s => s.Matched.Add(identity)))
        {
            if (unnamed) Extend(selection, identity);
            else Invalidate(selection);
        }
    }

    private void Invalidate(PeerSelection selection)
    {
        selection.Changed();
        _compileDirty.UnionWith(selection.Users);
    }

    /// <summary>
    /// A selection gained an identity no compiled policy has ever named as a peer: its users only gain entries
    /// for that peer, so they are patched rather than recompiled.
    /// </summary>
    private void Extend(PeerSelection selection, uint newPeer)
    {
        selection.Changed();
        foreach (var user in selection.Users)
        {
            if (!_newPeers.TryGetValue(user, out var peers)) _newPeers[user] = peers = [];
            peers.Add(newPeer);
        }
    }

    /// <summary>The identities a peer selector (with its requires) admits: table identities but 0, and reserved ones.</summary>
    private HashSet<uint> EvaluatePeers(PeerSelection selection)
    {
        var matched = new HashSet<uint>();
        var conjunction = selection.Conjunction.ToList();
        foreach (var id in _labels.Candidates(conjunction) ?? _identities.Keys)
            if (id != PolicyEntryKey.AnyPeer && selection.Matches(_identities[id])) matched.Add(id);
        foreach (var (id, labels) in PeerResolver.Reserved)
            if (!_identities.ContainsKey(id) && selection.Matches(labels)) matched.Add(id);
        return matched;
    }

    /// <summary>The cached peer selection; <paramref name="cache"/> false evaluates a missing one without keeping it.</summary>
    private PeerSelection PeerSelectionFor(LabelSelector selector, IReadOnlyList<LabelSelector> requires, bool cache)
    {
        var key = new PeerKey(selector, requires.Count == 0 ? "" : string.Join(" | ", requires));
        lock (_cachesLock)
        {
            if (_peers.TryGetValue(key, out var selection)) return selection;
            selection = new PeerSelection(key, selector, requires.ToArray());
            selection.Matched.UnionWith(EvaluatePeers(selection));
            if (cache)
            {
                _peers[key] = selection;
                _unusedPeerSelections.Add(selection);   // until a compile's uses are recorded
                _peerIndex.Add(selection, selection.Conjunction);
            }
            return selection;
        }
    }

    /// <summary>Entity.Cluster: every label identity of the cluster, their address groups and the reserved ones inside it.</summary>
    private uint[] ClusterIdentities => _cluster ??= _identities.Keys.Where(PeerResolver.IsClusterLabelIdentity)
        .SelectMany(id => AddressGroupsOf(id).Prepend(id)).Concat(PeerResolver.ClusterReserved).Distinct().Order().ToArray();

    private static uint[] WithIdentity(uint[] sorted, uint identity)
    {
        var at = Array.BinarySearch(sorted, identity);
        if (at >= 0) return sorted;
        at = ~at;
        var grown = new uint[sorted.Length + 1];
        sorted.AsSpan(0, at).CopyTo(grown);
        grown[at] = identity;
        sorted.AsSpan(at).CopyTo(grown.AsSpan(at + 1));
        return grown;
    }

    private List<SelectingSpec> SelectingSpecs(IdentityState state) =>
        state.SelectedBy.Select(s => { var p = _policies[s.Policy]; return new SelectingSpec(p, s.Index, p.Specs[s.Index]); }).ToList();

    /// <summary>Compiles one identity for one node numbering of CIDR/FQDN identities.</summary>
    private CompiledPolicy Compile(uint identity, IReadOnlyList<SelectingSpec> specs, LocalIdentities locals, IncrementalPeers peers) =>
        IdentityResolution.Resolve(identity, specs, peers.For(locals), peers, EnforcementMode);

    // Without address groups (no ipBlock covers a pod) a selection's peers are its identities, sorted as ever.
    private IncrementalPeers Peers(bool record) =>
        new(PeerSelectionFor, Scoped, () => ClusterIdentities, _groupings.Count == 0 ? null : AddressGroupsOf, IpBlockMatches, _namedPorts, record);

    /// <summary>Records the named-port lookups a compile (or patch) of an identity made, so a change to them recompiles it.</summary>
    private void UseNamedPorts(IdentityState state, IncrementalPeers lookups)
    {
        foreach (var key in lookups.NamedPortsUsed) UseNamedPort(state, key);
        // The subject's own names: recorded by name, since a shared compile serves every identity of its specs.
        foreach (var name in lookups.SubjectPortNamesUsed) UseNamedPort(state, new NamedPortKey(state.Id, name));
    }

    private void UseNamedPort(IdentityState state, NamedPortKey key)
    {
        if (!state.NamedPortUses.Add(key)) return;
        if (!_namedPortUsers.TryGetValue(key, out var users)) _namedPortUsers[key] = users = [];
        users.Add(state.Id);
    }

    /// <summary>The names the ingress rules of some specs give ports by, sorted: they resolve against the subject.</summary>
    private static string[] SubjectPortNames(List<SelectingSpec> specs)
    {
        SortedSet<string>? names = null;
        foreach (var s in specs)
            foreach (var section in (ReadOnlySpan<RuleSection>)[RuleSection.Ingress, RuleSection.IngressDeny])
                foreach (var rule in s.Spec.Rules(section))
                    if (rule.HasNamedPorts)
                        foreach (var port in rule.Ports)
                            if (port.Name is { } name) (names ??= new(StringComparer.Ordinal)).Add(name);
        return names?.ToArray() ?? [];
    }

    /// <summary>
    /// What an identity's entries take from its own named ports: the numbers it serves under each of
    /// <paramref name="names"/> ("" when there are none). Identities of the same specs share a compile only when
    /// this agrees.
    /// </summary>
    private string SubjectPortsKey(uint identity, string[] names) =>
        names.Length == 0 ? "" : string.Join(';', names.Select(n => $"{n}={string.Join(',', _namedPorts.OfSubject(identity, n))}"));

    // Compiles of a full commit run in parallel (see RunCompiles); the caches they fill are shared.
    private readonly Lock _cachesLock = new();

    // A namespaced policy's peer selectors, scoped once rather than at every compile.
    private readonly Dictionary<(LabelSelector Selector, string? Namespace), LabelSelector> _scoped = [];

    private LabelSelector Scoped(NetworkPolicy policy, LabelSelector selector)
    {
        if (policy.Namespace is null) return selector;
        lock (_cachesLock)
        {
            if (!_scoped.TryGetValue((selector, policy.Namespace), out var scoped))
                _scoped[(selector, policy.Namespace)] = scoped = policy.Scope(selector);
            return scoped;
        }
    }
}
