using Mesh.Contracts.Agent;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// Commit: recompile what the buffered changes touched, then bring every touched node up to date.
public sealed partial class IncrementalCompiler
{
    private (List<IpCacheEntry> Added, List<IpCacheEntry> Removed) _lastIpCacheDelta = ([], []);
    private long _previousVersion;

    /// <summary>
    /// Makes the changes since the last commit visible as <paramref name="version"/> (the log position they come
    /// from). Returns the nodes whose content changed; <see cref="DeltaOf"/> tells how.
    /// </summary>
    public CompileCommit Commit(long version)
    {
        if (version < Version) throw new ArgumentOutOfRangeException(nameof(version), version, $"versions only move forward (at {Version})");

        // 0. Endpoint addresses regrouped by the ipBlocks admitting them: the ipcache and the peers of ipBlocks,
        //    endpoint selectors and the cluster entity move with them.
        RegroupAddresses();

        // Endpoints that changed what a port name resolves to recompile exactly the identities that looked it up.
        foreach (var key in _namedPorts.TakeChanged())
            if (_namedPortUsers.TryGetValue(key, out var users)) _compileDirty.UnionWith(users);

        // 1. Who selects an identity decides its nodes' CIDR/FQDN identities.
        foreach (var id in _selectionDirty)
        {
            var state = _states[id];
            var peers = SelectingSpecs(state).SelectMany(s => IdentityResolution.AllRules(s.Spec)).SelectMany(r => r.Peers ?? []).ToList();
            state.NodePeers = peers.Where(p => p is Contracts.Policies.PeerSelector.Cidr or Contracts.Policies.PeerSelector.Fqdn).ToArray();
            state.DependsOnNode = peers.Any(LocalIdentities.IsNodeDependent);
            _compileDirty.Add(id);
        }
        // Nodes to look at whole (null); others only for the identities listed.
        var work = new Dictionary<NodeState, HashSet<uint>?>();
        foreach (var node in _nodesDirty) work[node] = null;
        foreach (var id in _selectionDirty)
            foreach (var node in _states[id].Nodes.Keys) work[_nodes[node]] = null;
        foreach (var node in work.Keys)
        {
            var locals = new LocalIdentities(node.Identities.Keys.SelectMany(id => _states[id].NodePeers));
            if (locals.Key != node.Locals.Key) node.Locals = locals;
        }

        // 2. Recompile: whatever a change marked, plus node-dependent identities on a node with a new numbering
        //    and identities that just arrived on a node (their policy for its numbering may be missing).
        var compiled = 0;
        var jobs = new CompileJobs();
        foreach (var id in _compileDirty)
        {
            var state = _states[id];
            EnsureCompiled(state, force: true, jobs);
            foreach (var node in state.Nodes.Keys)
            {
                var n = _nodes[node];
                if (!work.TryGetValue(n, out var ids)) work[n] = [id];
                else ids?.Add(id);
            }
        }
        var patched = new Dictionary<string, (CompiledPolicy Policy, IncrementalPeers Lookups)>(StringComparer.Ordinal);
        foreach (var (id, peers) in _newPeers)
        {
            var state = _states[id];
            // Under "never" a policy has no entries, whatever peers appear (its compile used none, so this is a guard).
            if (_compileDirty.Contains(id) || state.Nodes.Count == 0 || EnforcementMode == EnforcementMode.Never) continue;
            Extend(state, peers, patched);
            compiled++;
            foreach (var node in state.Nodes.Keys)
            {
                var n = _nodes[node];
                if (!work.TryGetValue(n, out var ids)) work[n] = [id];
                else ids?.Add(id);
            }
        }
        foreach (var node in work.Where(w => w.Value is null).Select(w => w.Key))
            foreach (var id in node.Identities.Keys)
                if (!_compileDirty.Contains(id)) EnsureCompiled(_states[id], force: false, jobs);
        compiled += RunCompiles(jobs);

        // 3. The cluster-wide ipcache moved: every node's hash changes, and a node's CIDR identities may be hidden
        //    or uncovered by endpoint addresses.
        var (ipAdded, ipRemoved) = ClusterIpCacheDelta();
        var ipCacheMoved = ipAdded.Count + ipRemoved.Count > 0;
        if (ipCacheMoved)
            foreach (var node in _nodes.Values)
                if (node.Locals.HasCidrs || node.PublishedLocalIpCache.Count > 0) work.TryAdd(node, []);

        // Nodes are published independently of each other (each reads the compiled state, writes only itself).
        var changed = new List<string>();
        var published = work.ToArray();
        OnCores(published.Length, i => published[i].Key.Change = Publish(published[i].Key, version, published[i].Value, ipCacheMoved));
        foreach (var (node, _) in published) if (node.Change is not null || ipCacheMoved) changed.Add(node.Name);
        if (ipCacheMoved)
        {
            var rest = _nodes.Values.Where(n => !work.ContainsKey(n)).ToArray();
            OnCores(rest.Length, i =>
            {
                rest[i].Change = null;
                Rehash(rest[i]);
            });
            foreach (var node in rest) changed.Add(node.Name);
        }

        _selectionDirty.Clear();
        _compileDirty.Clear();
        _newPeers.Clear();
        _nodesDirty.Clear();
        CollectUnusedPeerSelections();
        _previousVersion = Version;
        Version = version;
        _lastIpCacheDelta = (ipAdded, ipRemoved);
        changed.Sort(StringComparer.Ordinal);
        return new CompileCommit(_previousVersion, version, changed) { IdentitiesCompiled = compiled };
    }

    /// <summary>
    /// The change the last commit made to <paramref name="node"/> (empty when it changed nothing there). Built on
    /// request: the first commit of a cluster is every node's whole content.
    /// </summary>
    public NodeDelta DeltaOf(string node)
    {
        var (ipAdded, ipRemoved) = _lastIpCacheDelta;
        if (!_nodes.TryGetValue(node, out var state) || state.Change is not { } change || change.To != Version)
            // A node without endpoints still holds the cluster's ipcache.
            return new NodeDelta(node, _previousVersion, Version, ContentHash(node), ipAdded, ipRemoved, [], [], [], [], [], [], [], []);
        if (change.Delta is { } built) return built;

        var set = new List<PolicyHeader>();
        var removed = new List<uint>();
        var entriesAdded = new List<EntryChange>();
        var entriesRemoved = new List<EntryChange>();
        foreach (var (id, was) in change.PoliciesBefore.OrderBy(p => p.Key))
        {
            var now = state.PublishedPolicies.GetValueOrDefault(id);
            if (now is null) { removed.Add(id); continue; }
            if (was is null || was.IngressEnforced != now.IngressEnforced || was.EgressEnforced != now.EgressEnforced)
                set.Add(new PolicyHeader(id, now.IngressEnforced, now.EgressEnforced));
            DiffEntries(id, was, now, entriesAdded, entriesRemoved);
        }
        return change.Delta = new NodeDelta(node, change.From, change.To, state.ContentHash,
            [.. ipAdded, .. change.LocalIpCacheAdded], [.. ipRemoved, .. change.LocalIpCacheRemoved],
            change.EndpointsAdded, change.EndpointsRemoved, set, removed, entriesAdded, entriesRemoved, change.FqdnsAdded, change.FqdnsRemoved);
    }

    /// <summary>
    /// Releases what an identity's compiled policies used and plans the compiles it needs (one shared, or one per
    /// numbering of its nodes); <see cref="RunCompiles"/> runs them and puts the results in place.
    /// </summary>
    private void EnsureCompiled(IdentityState state, bool force, CompileJobs jobs)
    {
        if (!jobs.Planned.Add(state)) return;
        if (state.Nodes.Count == 0)
        {
            state.Shared = null;
            state.ByNumbering = null;
            ReleaseUses(state);
            return;
        }
        if (!state.DependsOnNode)
        {
            if (!force && state.Shared is not null) return;
            ReleaseUses(state);
            state.Shared = null;
            state.ByNumbering = null;
            jobs.Add(new CompileJob(state, SelectingSpecs(state), LocalIdentities.None, shared: true));
            return;
        }
        if (force || state.ByNumbering is null)
        {
            ReleaseUses(state);
            state.ByNumbering = [];
        }
        state.Shared = null;
        var specs = (List<SelectingSpec>?)null;
        var needed = new Dictionary<string, LocalIdentities>(StringComparer.Ordinal);
        foreach (var node in state.Nodes.Keys)
        {
            var locals = _nodes[node].Locals;
            needed.TryAdd(locals.Key, locals);
        }
        foreach (var (key, locals) in needed)
        {
            if (state.ByNumbering.ContainsKey(key)) continue;
            specs ??= SelectingSpecs(state);
            jobs.Add(new CompileJob(state, specs, locals, shared: false));
        }
        List<string>? stale = null;
        foreach (var key in state.ByNumbering.Keys) if (!needed.ContainsKey(key)) (stale ??= []).Add(key);
        if (stale is not null) foreach (var key in stale) state.ByNumbering.Remove(key);
    }

    /// <summary>
    /// Runs the planned compiles, on every core when there are many (a full compile): each compile is pure apart
    /// from the caches it fills under a lock, and the results and uses are put in place in plan order afterwards,
    /// so the outcome is the same however the work was split.
    /// </summary>
    /// <returns>How many identity policies it produced (shared results included).</returns>
    private int RunCompiles(CompileJobs jobs)
    {
        if (jobs.Count == 0) return 0;
        // Identities selected by the same specs (the versions of one app, say) get the same entries for the same
        // numbering: compile once per set of specs and numbering, and give the result to each of them.
        var leaders = new Dictionary<string, CompileJob>(StringComparer.Ordinal);
        var compiles = new List<CompileJob>();
        var subjectPortNames = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var job in jobs)
        {
            var key = ShareKey(job, subjectPortNames);
            if (leaders.TryGetValue(key, out var leader)) job.Leader = leader;
            else
            {
                leaders[key] = job;
                compiles.Add(job);
            }
        }
        _ = ClusterIdentities; // filled once before workers read it
        OnCores(compiles.Count, i => Run(compiles[i]));

        foreach (var job in jobs)
        {
            if (job.Leader is { } leader)
            {
                job.Result = leader.Result!.For(job.State.Id);
                job.Peers = leader.Peers;
            }
            var state = job.State;
            if (job.Shared) state.Shared = job.Result;
            else state.ByNumbering![job.Locals.Key] = job.Result!;
            foreach (var selection in job.Peers!.Used)
                if (state.Uses.Add(selection)) selection.Users.Add(state.Id);
            if (job.Peers.UsedIpBlocks is { } blocks)
                foreach (var block in blocks) UseIpBlock(state.Id, block);
            UseNamedPorts(state, job.Peers);
            if (job.Peers.UsedCluster && !state.UsesCluster)
            {
                state.UsesCluster = true;
                _clusterUsers.Add(state.Id);
            }
        }
        return jobs.Count;

        void Run(CompileJob job)
        {
            job.Peers = Peers(record: true);
            job.Result = Compile(job.State.Id, job.Specs, job.Locals, job.Peers);
        }
    }

    // What a compile's entries depend on: the selecting specs (in any order), the node numbering, and the
    // subject's own numbers for the names its ingress rules use (those names found once per set of specs).
    private string ShareKey(CompileJob job, Dictionary<string, string[]> subjectPortNames)
    {
        var specs = SpecsKey(job.Specs);
        if (!subjectPortNames.TryGetValue(specs, out var names)) subjectPortNames[specs] = names = SubjectPortNames(job.Specs);
        return specs + "\n@" + job.Locals.Key + "\n#" + SubjectPortsKey(job.State.Id, names);
    }

    private static string SpecsKey(List<SelectingSpec> selecting)
    {
        var specs = new string[selecting.Count];
        for (var i = 0; i < specs.Length; i++)
            specs[i] = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{selecting[i].Policy.Reference}#{selecting[i].Index}");
        Array.Sort(specs, StringComparer.Ordinal);
        return string.Join('\n', specs);
    }

    /// <summary>Runs <paramref name="work"/> for 0 … count-1, on every core when there is enough of it.</summary>
    private void OnCores(int count, Action<int> work)
    {
        if (count >= ParallelFrom && Environment.ProcessorCount > 1)
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, work);
        else
            for (var i = 0; i < count; i++) work(i);
    }

    /// <summary>Adds the entries of peers that just appeared to an identity's compiled policies (one per numbering).</summary>
    /// <param name="patched">Shared policies patched in this commit, by specs, content and new peers: identities
    /// selected by the same specs, with the same policy, gaining the same peers get the same result.</param>
    private void Extend(IdentityState state, HashSet<uint> peers, Dictionary<string, (CompiledPolicy Policy, IncrementalPeers Lookups)> patched)
    {
        var specs = SelectingSpecs(state);
        CompiledPolicy Patched(CompiledPolicy policy, LocalIdentities locals, out IncrementalPeers lookups)
        {
            lookups = Peers(record: false).For(locals);
            return IdentityResolution.Extend(policy, state.Id, specs, new OnlyPeers(lookups, peers), lookups);
        }
        if (state.Shared is { } shared)
        {
            var key = $"{SpecsKey(specs)}\n@{shared.Digest}/{shared.Audit?.Digest}\n#{SubjectPortsKey(state.Id, SubjectPortNames(specs))}\n+{string.Join(',', peers.Order())}";
            if (patched.TryGetValue(key, out var same))
            {
                state.Shared = same.Policy.For(state.Id);
                UseNamedPorts(state, same.Lookups);
            }
            else
            {
                state.Shared = Patched(shared, LocalIdentities.None, out var lookups);
                patched[key] = (state.Shared, lookups);
                UseNamedPorts(state, lookups);
            }
        }
        if (state.ByNumbering is { } byNumbering)
            foreach (var locals in state.Nodes.Keys.Select(n => _nodes[n].Locals).DistinctBy(l => l.Key).Where(l => byNumbering.ContainsKey(l.Key)))
            {
                byNumbering[locals.Key] = Patched(byNumbering[locals.Key], locals, out var lookups);
                UseNamedPorts(state, lookups);
            }
    }

    private void ReleaseUses(IdentityState state)
    {
        foreach (var selection in state.Uses)
            if (selection.Users.Remove(state.Id) && selection.Users.Count == 0) _unusedPeerSelections.Add(selection);
        state.Uses.Clear();
        ReleaseIpBlocks(state.Id);
        if (state.UsesCluster) _clusterUsers.Remove(state.Id);
        state.UsesCluster = false;
        foreach (var key in state.NamedPortUses)
            if (_namedPortUsers.TryGetValue(key, out var users) && users.Remove(state.Id) && users.Count == 0) _namedPortUsers.Remove(key);
        state.NamedPortUses.Clear();
    }

    /// <summary>Cached peer selections no compiled policy uses: none once a commit returns.</summary>
    internal int UnusedPeerSelections => _peers.Values.Count(s => s.Users.Count == 0);

    // Only the selections that lost their last user or were cached since the last commit, not every cached one.
    private void CollectUnusedPeerSelections()
    {
        foreach (var selection in _unusedPeerSelections)
            if (selection.Users.Count == 0 && _peers.TryGetValue(selection.Key, out var cached) && ReferenceEquals(cached, selection))
            {
                _peers.Remove(selection.Key);
                _peerIndex.Remove(selection, selection.Conjunction);
            }
        _unusedPeerSelections.Clear();
    }

    /// <summary>
    /// Brings a node's published state to now: its endpoints and every local identity when <paramref name="identities"/>
    /// is null, else only those identities. Returns what changed, or null.
    /// </summary>
    private NodeChange? Publish(NodeState node, long version, HashSet<uint>? identities, bool ipCacheMoved)
    {
        var change = new NodeChange(Version, version);
        var endpointsDigest = node.EndpointsDigest;
        var policiesDigest = node.PoliciesDigest;
        if (identities is null)
        {
            foreach (var (id, e) in node.Endpoints)
            {
                if (node.PublishedEndpoints.TryGetValue(id, out var was) && was == e) continue;
                if (was is not null) { change.EndpointsRemoved.Add(was); ContentDigest.Toggle(ref endpointsDigest, was, remove: true); }
                change.EndpointsAdded.Add(e);
                ContentDigest.Toggle(ref endpointsDigest, e, remove: false);
            }
            foreach (var (id, was) in node.PublishedEndpoints)
                if (!node.Endpoints.ContainsKey(id)) { change.EndpointsRemoved.Add(was); ContentDigest.Toggle(ref endpointsDigest, was, remove: true); }
            if (!change.IsEmpty)
            {
                foreach (var e in change.EndpointsRemoved) if (!node.Endpoints.ContainsKey(e.Id)) node.PublishedEndpoints.Remove(e.Id);
                foreach (var e in change.EndpointsAdded) node.PublishedEndpoints[e.Id] = e;
            }
        }

        // Published by layer: an identity's audit layer is one more policy of the node, keyed with the audit bit.
        var candidates = identities ?? node.Identities.Keys.Concat(node.PublishedPolicies.Keys.Select(k => k & ~AgentProtocol.AuditLayer)).ToHashSet();
        foreach (var id in candidates)
        {
            var now = node.Identities.ContainsKey(id) ? _states[id].For(node.Locals) : null;
            PublishLayer(id, now);
            PublishLayer(id | AgentProtocol.AuditLayer, now?.Audit);
        }

        void PublishLayer(uint key, CompiledPolicy? now)
        {
            var was = node.PublishedPolicies.GetValueOrDefault(key);
            if (ReferenceEquals(was, now)) return;
            if (was is not null && now is not null && was.SameContent(now)) { node.PublishedPolicies[key] = now; return; }
            change.PoliciesBefore[key] = was;
            if (was is not null) ContentDigest.Toggle(ref policiesDigest, key, was.Digest, remove: true);
            if (now is null) node.PublishedPolicies.Remove(key);
            else
            {
                node.PublishedPolicies[key] = now;
                ContentDigest.Toggle(ref policiesDigest, key, now.Digest, remove: false);
            }
        }

        // The node's own CIDR/FQDN identities in its ipcache, unless an endpoint's address covers the same prefix.
        // (Nothing to do on a node that has none and had none: most nodes, when the cluster's ipcache moves.)
        if ((identities is null || ipCacheMoved) && (node.Locals.HasCidrs || node.PublishedLocalIpCache.Count > 0))
        {
            var localIp = node.Locals.IpCacheEntries.Where(e => !_taken.ContainsKey(e.Cidr)).ToList();
            var nowLocal = localIp.ToHashSet();
            var wasLocal = node.PublishedLocalIpCache.ToHashSet();
            change.LocalIpCacheRemoved.AddRange(node.PublishedLocalIpCache.Where(e => !nowLocal.Contains(e)));
            change.LocalIpCacheAdded.AddRange(localIp.Where(e => !wasLocal.Contains(e)));
            node.PublishedLocalIpCache = localIp;
            node.LocalIpCacheDigest = ContentDigest.IpCache(localIp);
        }

        // The node's toFQDNs selectors move only with its numbering, which only a look at the whole node changes.
        if (identities is null && !node.PublishedFqdns.SequenceEqual(node.Locals.FqdnSelectors))
        {
            var now = node.Locals.FqdnSelectors.ToHashSet();
            var was = node.PublishedFqdns.ToHashSet();
            change.FqdnsRemoved.AddRange(node.PublishedFqdns.Where(f => !now.Contains(f)));
            change.FqdnsAdded.AddRange(node.Locals.FqdnSelectors.Where(f => !was.Contains(f)));
            node.PublishedFqdns = node.Locals.FqdnSelectors;
            node.FqdnsDigest = ContentDigest.Fqdns(node.PublishedFqdns);
        }

        node.EndpointsDigest = endpointsDigest;
        node.PoliciesDigest = policiesDigest;
        Rehash(node);
        return change.IsEmpty ? null : change;
    }

    private void Rehash(NodeState node)
    {
        var ipCache = _ipDigest;
        ipCache.Add(node.LocalIpCacheDigest);
        node.ContentHash = ContentDigest.Node(node.Name, ipCache, node.EndpointsDigest, node.PoliciesDigest, node.FqdnsDigest);
        node.Materialized = null;
    }

    private static void DiffEntries(uint identity, CompiledPolicy? was, CompiledPolicy now, List<EntryChange> added, List<EntryChange> removed)
    {
        var (i, j) = (0, 0);
        var wasCount = was?.Count ?? 0;
        while (i < wasCount || j < now.Count)
        {
            var c = i >= wasCount ? 1 : j >= now.Count ? -1 : was!.Keys[i].CompareTo(now.Keys[j]);
            if (c < 0) { removed.Add(Change(identity, was!, i++)); continue; }
            if (c > 0) { added.Add(Change(identity, now, j++)); continue; }
            if (was!.CandidateAt(i) != now.CandidateAt(j))
            {
                removed.Add(Change(identity, was, i));
                added.Add(Change(identity, now, j));
            }
            i++;
            j++;
        }
    }

    private static EntryChange Change(uint identity, CompiledPolicy policy, int i) =>
        new(identity, policy.Keys[i], policy.Values[i].Verdict, policy.L7Of(i), policy.Rules[policy.Values[i].Rule], policy.Values[i].Rank);
}
