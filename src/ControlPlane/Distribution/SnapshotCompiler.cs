using System.Collections.Immutable;
using System.Globalization;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Distribution;

/// <summary>One update for a watcher: a whole snapshot, or a delta from <paramref name="From"/> (the version it holds).</summary>
public sealed record NodeUpdate(NodeSnapshot? Snapshot, NodeDelta? Delta, long From)
{
    public Mesh.Contracts.Agent.SnapshotUpdate ToProto() =>
        Delta is { } delta ? new() { Delta = DeltaWire.ToProto(delta, From) } : new() { Snapshot = Snapshot!.ToProto() };

    public long Version => Delta?.ToVersion ?? Snapshot!.Version;
}

/// <summary>
/// Feeds the incremental compiler from ClusterViews: each newer view is applied as the changes between it and the
/// last one compiled (unchanged collections are the same objects, so only what moved is walked), then committed at
/// the view's position. Watchers of every node share that one compile; a watcher holding an older view gets the
/// newest snapshot. One lock: the compiler has one owner at a time.
/// </summary>
public sealed class SnapshotCompiler
{
    private readonly Lock _gate = new();
    private readonly IncrementalCompiler _compiler;
    private ClusterView _compiled = ClusterView.Empty;
    private long _committedFrom;

    /// <summary>Entry budget from <c>--entry-budget=N</c> or MESH_ENTRY_BUDGET; default 16384, Cilium's.</summary>
    public SnapshotCompiler(IConfiguration configuration)
        : this(int.TryParse(configuration["entry-budget"] ?? configuration["MESH_ENTRY_BUDGET"], NumberStyles.None, CultureInfo.InvariantCulture, out var budget)
            ? budget : IncrementalCompiler.DefaultEntryBudget) { }

    public SnapshotCompiler(int entryBudget) => _compiler = new IncrementalCompiler(entryBudget);

    public int EntryBudget => _compiler.EntryBudget;

    public NodeSnapshot For(string node, ClusterView view)
    {
        lock (_gate)
        {
            CatchUp(view);
            return _compiler.Snapshot(node);
        }
    }

    /// <summary>
    /// What a watcher of <paramref name="node"/> needs next: null when <paramref name="held"/> is already the newest
    /// version, a delta when it holds exactly the version the last commit started from, else the whole snapshot.
    /// <paramref name="held"/> must be a version this stream delivered (null when it delivered none).
    /// </summary>
    public NodeUpdate? Next(string node, long? held, ClusterView view)
    {
        lock (_gate)
        {
            CatchUp(view);
            if (held == _compiler.Version) return null;
            if (held == _committedFrom && held > 0) return new NodeUpdate(null, _compiler.DeltaOf(node), _committedFrom);
            return new NodeUpdate(_compiler.Snapshot(node), null, 0);
        }
    }

    /// <summary>The identities applying <paramref name="policy"/> to <paramref name="view"/> would push over the entry budget.</summary>
    public IReadOnlyList<BudgetViolation> CheckPolicy(NetworkPolicy policy, ClusterView view)
    {
        lock (_gate)
        {
            CatchUp(view);
            return _compiler.CheckPolicy(policy);
        }
    }

    public IReadOnlyList<IdentityPressure> Pressure(ClusterView view)
    {
        lock (_gate)
        {
            CatchUp(view);
            return _compiler.Pressure();
        }
    }

    private void CatchUp(ClusterView view)
    {
        if (view.Position <= _compiled.Position) return;
        var was = _compiled;
        Diff(was.Identities, view.Identities,
            (_, now) => _compiler.AllocateIdentity(now.Identity, now.Labels),
            _ => { });   // a released identity has no endpoint, so no address maps to it: its entries are inert
        Diff(was.Policies, view.Policies,
            (old, now) => { if (old?.Hash != now.Hash) _compiler.ApplyPolicy(now.Policy); },
            old => _compiler.DeletePolicy(old.Policy.Namespace, old.Policy.Name));
        Diff(was.Endpoints, view.Endpoints,
            (_, now) => _compiler.RegisterEndpoint(new CompilerEndpoint(now.Id, now.Spec.Node, now.Spec.Ip, now.Spec.Interface, now.Identity)),
            old => _compiler.DeleteEndpoint(old.Id));
        _committedFrom = _compiler.Commit(view.Position.Value).FromVersion;
        _compiled = view;
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
