using System.Collections.Immutable;
using System.Globalization;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.State;
using Proto = Mesh.Contracts.Agent;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// The last commit as watchers read it, without the compiler's lock: each node's wire delta from
/// <see cref="From"/> to <see cref="Version"/>, built once for every watcher of that node. Nodes whose content did
/// not change move by version alone (their content hash stays what it was).
/// </summary>
public sealed class CompiledVersion(long version, long from, IReadOnlyDictionary<string, Proto.SnapshotUpdate> changed, IReadOnlyDictionary<string, string> hashes)
{
    public static readonly CompiledVersion None = new(0, 0, new Dictionary<string, Proto.SnapshotUpdate>(), new Dictionary<string, string>());

    public long Version => version;
    public long From => from;

    /// <summary>Whether a watcher holding <paramref name="held"/> (a version its stream delivered) moves to this one by a delta.</summary>
    public bool FollowsOn(long? held) => held > 0 && held == from;

    /// <summary>The delta for a node the compiler knows, or null for a node it has never seen (no endpoints).</summary>
    public Proto.SnapshotUpdate? DeltaFor(string node)
    {
        if (changed.TryGetValue(node, out var delta)) return delta;
        if (!hashes.TryGetValue(node, out var hash)) return null;
        return new Proto.SnapshotUpdate
        {
            Delta = new Proto.NodeSnapshotDelta { Node = node, FromVersion = checked((ulong)from), Version = checked((ulong)version), ContentHash = hash },
        };
    }
}

/// <summary>
/// Feeds the incremental compiler from ClusterViews: each newer view is applied as the changes between it and the
/// last one compiled, found in the view's journal of changed keys (or, when the journal no longer reaches back that
/// far, by walking both views' collections in step), then committed at the view's position and published as a <see cref="CompiledVersion"/> that every watcher reads without locking.
/// One lock: the compiler has one owner at a time. <see cref="CompileLoop"/> keeps it following the cluster state.
/// </summary>
public sealed class SnapshotCompiler
{
    private readonly Lock _gate = new();
    private readonly IncrementalCompiler _compiler;
    private ClusterView _compiled = ClusterView.Empty;
    private volatile CompiledVersion _latest = CompiledVersion.None;
    // The newest view position the compiler has taken in, with or without a new version: events that change nothing
    // a snapshot holds (what nodes report they enforce) move it without a version, or every ack would bring a new
    // version for every node to ack again.
    private long _compiledThrough;
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Entry budget from <c>--entry-budget=N</c> or MESH_ENTRY_BUDGET; default 16384, Cilium's.</summary>
    public SnapshotCompiler(IConfiguration configuration)
        : this(int.TryParse(configuration["entry-budget"] ?? configuration["MESH_ENTRY_BUDGET"], NumberStyles.None, CultureInfo.InvariantCulture, out var budget)
            ? budget : IncrementalCompiler.DefaultEntryBudget) { }

    public SnapshotCompiler(int entryBudget) => _compiler = new IncrementalCompiler(entryBudget);

    public int EntryBudget => _compiler.EntryBudget;

    /// <summary>The newest commit.</summary>
    public CompiledVersion Latest => _latest;

    /// <summary>Completes when a newer commit than the one read before the call is published.</summary>
    public Task Published => Volatile.Read(ref _published).Task;

    /// <summary>Waits until the compiler has taken in the view at <paramref name="position"/> (the newest version then includes it).</summary>
    public async Task WaitForAsync(long position, CancellationToken ct)
    {
        while (true)
        {
            var signal = Volatile.Read(ref _advanced).Task;
            if (Volatile.Read(ref _compiledThrough) >= position) return;
            await signal.WaitAsync(ct);
        }
    }

    /// <summary>
    /// Compiles <paramref name="view"/> if it is newer than the last one taken in, and publishes the result: a new
    /// version when something a snapshot holds changed since the last version, else only the position.
    /// </summary>
    public void CatchUp(ClusterView view)
    {
        if (view.Position.Value <= Volatile.Read(ref _compiledThrough)) return;
        lock (_gate) CatchUpLocked(view);
    }

    /// <summary>
    /// What a watcher of <paramref name="node"/> needs next: null when <paramref name="held"/> is already the newest
    /// version, a delta when it holds exactly the version the last commit started from, else the whole snapshot.
    /// <paramref name="held"/> must be a version this stream delivered (null when it delivered none).
    /// </summary>
    public Proto.SnapshotUpdate? Next(string node, long? held)
    {
        var latest = _latest;
        if (held == latest.Version) return null;
        if (latest.FollowsOn(held) && latest.DeltaFor(node) is { } update) return update;
        lock (_gate)
        {
            if (held == _compiler.Version) return null;
            if (_latest.FollowsOn(held)) return new Proto.SnapshotUpdate { Delta = DeltaWire.ToProto(_compiler.DeltaOf(node), _latest.From) };
            return new Proto.SnapshotUpdate { Snapshot = _compiler.Snapshot(node).ToProto() };
        }
    }

    /// <summary>The identities applying <paramref name="policy"/> to <paramref name="view"/> would push over the entry budget.</summary>
    public IReadOnlyList<BudgetViolation> CheckPolicy(NetworkPolicy policy, ClusterView view)
    {
        lock (_gate)
        {
            CatchUpLocked(view);
            return _compiler.CheckPolicy(policy);
        }
    }

    public IReadOnlyList<IdentityPressure> Pressure(ClusterView view)
    {
        lock (_gate)
        {
            CatchUpLocked(view);
            return _compiler.Pressure();
        }
    }

    private void CatchUpLocked(ClusterView view)
    {
        if (view.Position.Value <= _compiledThrough) return;
        if (view.Changes is { } newest && newest.Position <= _compiled.Position)
        {
            // Only events the compiler does not read since the last version (the journal lists every key it reads;
            // a view without a journal is compared whole).
            Advance(view.Position.Value);
            return;
        }
        if (view.Changes is { } changes && changes.Since <= _compiled.Position) ApplyJournal(_compiled, view, changes);
        else ApplyDiff(_compiled, view);
        var commit = _compiler.Commit(view.Position.Value);
        _compiled = view;
        Publish(commit);
    }

    /// <summary>The keys the view's journal lists after <paramref name="was"/>: identities first, as a whole diff goes.</summary>
    private void ApplyJournal(ClusterView was, ClusterView view, ViewChange changes)
    {
        var touched = new HashSet<(ViewPart Part, string Key, uint Identity)>();
        for (var c = changes; c is not null && c.Position > was.Position; c = c.Older) touched.Add((c.Part, c.Key, c.Identity));
        foreach (var (part, key, identity) in touched.OrderBy(t => t.Part))
        {
            switch (part)
            {
                case ViewPart.Identities: Changed(was.Identities, view.Identities, identity, SetIdentity, ReleaseIdentity); break;
                case ViewPart.Policies: Changed(was.Policies, view.Policies, key, SetPolicy, RemovePolicy); break;
                case ViewPart.Endpoints: Changed(was.Endpoints, view.Endpoints, key, SetEndpoint, RemoveEndpoint); break;
                case ViewPart.Nodes: Changed(was.Nodes, view.Nodes, key, SetNode, _ => { }); break;
                case ViewPart.Enforcement: _compiler.SetEnforcementMode(view.PolicyEnforcement.Mode); break;
            }
        }
    }

    private void ApplyDiff(ClusterView was, ClusterView view)
    {
        Diff(was.Identities, view.Identities, SetIdentity, ReleaseIdentity);
        Diff(was.Policies, view.Policies, SetPolicy, RemovePolicy);
        Diff(was.Endpoints, view.Endpoints, SetEndpoint, RemoveEndpoint);
        Diff(was.Nodes, view.Nodes, SetNode, _ => { });   // nodes are not removed: their addresses stay remote-node
        _compiler.SetEnforcementMode(view.PolicyEnforcement.Mode);
    }

    private void SetIdentity(IdentityRecord? old, IdentityRecord now) => _compiler.AllocateIdentity(now.Identity, now.Labels);

    // Entries naming a released identity would be inert (no address maps to it), but the snapshot would not be the one
    // the log gives: a replay compiles the table without it.
    private void ReleaseIdentity(IdentityRecord old) => _compiler.ReleaseIdentity(old.Identity);

    private void SetPolicy(PolicyRecord? old, PolicyRecord now)
    {
        if (old?.Hash != now.Hash) _compiler.ApplyPolicy(now.Policy);
    }

    private void RemovePolicy(PolicyRecord old) => _compiler.DeletePolicy(old.Policy.Kind, old.Policy.Namespace, old.Policy.Name);

    private void SetEndpoint(EndpointRecord? old, EndpointRecord now) => _compiler.RegisterEndpoint(CompilerInputs.Endpoint(now));

    private void RemoveEndpoint(EndpointRecord old) => _compiler.DeleteEndpoint(old.Id);

    private void SetNode(NodeRecord? old, NodeRecord now) => _compiler.RegisterNode(new ClusterNode(now.Name, now.Addresses));

    /// <summary>One key of two versions of a map: set when it is there and not the same object, removed when it is gone.</summary>
    private static void Changed<TKey, TValue>(ImmutableSortedDictionary<TKey, TValue> before, ImmutableSortedDictionary<TKey, TValue> after, TKey key,
        Action<TValue?, TValue> set, Action<TValue> removed) where TKey : notnull where TValue : class
    {
        var old = before.GetValueOrDefault(key);
        var now = after.GetValueOrDefault(key);
        if (now is not null && !ReferenceEquals(old, now)) set(old, now);
        else if (now is null && old is not null) removed(old);
    }

    /// <summary>
    /// Builds the wire deltas of the nodes that changed (the first commit has none: every watcher starts from a
    /// whole snapshot), notes every known node's hash, and wakes the watchers.
    /// </summary>
    private void Publish(CompileCommit commit)
    {
        var changed = new Dictionary<string, Proto.SnapshotUpdate>(StringComparer.Ordinal);
        if (commit.FromVersion > 0)
            foreach (var node in commit.Changed)
                changed[node] = new Proto.SnapshotUpdate { Delta = DeltaWire.ToProto(_compiler.DeltaOf(node), commit.FromVersion) };
        var hashes = _compiler.NodeNames.ToDictionary(n => n, _compiler.ContentHash, StringComparer.Ordinal);
        _latest = new CompiledVersion(commit.Version, commit.FromVersion, changed, hashes);
        Interlocked.Exchange(ref _published, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        Advance(commit.Version);
    }

    /// <summary>Moves the position taken in; wakes <see cref="WaitForAsync"/>, not the agents' streams (no new version for them).</summary>
    private void Advance(long position)
    {
        Volatile.Write(ref _compiledThrough, position);
        Interlocked.Exchange(ref _advanced, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Walks two versions of a sorted map in step: a value that is not the same object was set.</summary>
    private static void Diff<TKey, TValue>(ImmutableSortedDictionary<TKey, TValue> before, ImmutableSortedDictionary<TKey, TValue> after,
        Action<TValue?, TValue> set, Action<TValue> removed) where TKey : notnull where TValue : class
    {
        if (ReferenceEquals(before, after)) return;
        if (before.IsEmpty)
        {
            foreach (var (_, value) in after) set(null, value);
            return;
        }
        var comparer = after.KeyComparer;
        using var b = before.GetEnumerator();
        using var a = after.GetEnumerator();
        var (hasB, hasA) = (b.MoveNext(), a.MoveNext());
        while (hasB || hasA)
        {
            var c = !hasB ? 1 : !hasA ? -1 : comparer.Compare(b.Current.Key, a.Current.Key);
            if (c < 0) { removed(b.Current.Value); hasB = b.MoveNext(); }
            else if (c > 0) { set(null, a.Current.Value); hasA = a.MoveNext(); }
            else
            {
                if (!ReferenceEquals(b.Current.Value, a.Current.Value)) set(b.Current.Value, a.Current.Value);
                (hasB, hasA) = (b.MoveNext(), a.MoveNext());
            }
        }
    }
}
