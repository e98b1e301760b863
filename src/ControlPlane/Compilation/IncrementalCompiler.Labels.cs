using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Compilation;

// The label table of every node: the labels of the identities the cluster's ipcache maps to (shared by every node),
// and each node's own part, its identities the cluster's part lacks (a local endpoint whose address maps to an
// address group, a CIDR identity the identity table has labels for).
public sealed partial class IncrementalCompiler
{
    // Label identity → how many entries of the cluster's ipcache map to it (an address group counts for its label identity).
    private readonly Dictionary<uint, int> _labelUses = [];
    // The cluster's part of every node's label table, as of the last commit.
    private readonly Dictionary<uint, IdentityLabels> _clusterLabels = [];
    // Identities whose uses or labels changed since the last commit.
    private readonly HashSet<uint> _labelsTouched = [];
    private SetDigest _labelsDigest;
    private IdentityLabels[]? _labelsSorted;
    private (List<IdentityLabels> Set, List<IdentityLabels> Removed) _lastLabelsDelta = ([], []);

    private void UseLabels(uint identity, int by)
    {
        var id = new NumericIdentity(identity).LabelIdentity.Value;
        var uses = _labelUses.GetValueOrDefault(id) + by;
        if (uses == 0) _labelUses.Remove(id);
        else _labelUses[id] = uses;
        _labelsTouched.Add(id);
    }

    /// <summary>
    /// Brings the cluster's part up to date with the identities touched since the last commit, and adds the nodes
    /// those identities are local on to <paramref name="work"/> (their own part may move). A changed identity is
    /// removed with its old labels and set with its new ones.
    /// </summary>
    private (List<IdentityLabels> Set, List<IdentityLabels> Removed) ClusterLabelsDelta(Dictionary<NodeState, HashSet<uint>?> work)
    {
        var set = new List<IdentityLabels>();
        var removed = new List<IdentityLabels>();
        foreach (var id in _labelsTouched.Order())
        {
            if (_states.TryGetValue(id, out var state))
                foreach (var node in state.Nodes.Keys) work.TryAdd(_nodes[node], []);
            var was = _clusterLabels.GetValueOrDefault(id);
            var now = _labelUses.ContainsKey(id) && _identities.TryGetValue(id, out var labels) ? new IdentityLabels(id, labels) : null;
            if (was == now) continue;
            _labelsSorted = null;
            if (was is not null)
            {
                ContentDigest.Toggle(ref _labelsDigest, was, remove: true);
                _clusterLabels.Remove(id);
                removed.Add(was);
            }
            if (now is not null)
            {
                ContentDigest.Toggle(ref _labelsDigest, now, remove: false);
                _clusterLabels[id] = now;
                set.Add(now);
            }
        }
        _labelsTouched.Clear();
        return (set, removed);
    }

    /// <summary>Recomputes a node's own part of its label table, noting what changed as of <paramref name="version"/>.</summary>
    private void RefreshLabels(NodeState node, long version)
    {
        Dictionary<uint, IdentityLabels>? now = null;
        foreach (var id in node.Identities.Keys) Own(id);
        foreach (var e in node.PublishedLocalIpCache) Own(new NumericIdentity(e.Identity).LabelIdentity.Value);
        var was = node.PublishedLabels;
        if ((now?.Count ?? 0) == 0 && was.Count == 0) return;   // most nodes: every local identity is in the cluster's part

        now ??= [];
        var set = now.Values.Where(l => !was.TryGetValue(l.Identity, out var old) || old != l).ToList();
        var removed = was.Values.Where(l => !now.TryGetValue(l.Identity, out var kept) || kept != l).ToList();
        if (set.Count == 0 && removed.Count == 0) return;
        node.PublishedLabels = now;
        node.LabelsDigest = ContentDigest.Labels(now.Values);
        node.LabelsChange = new LabelsChange(version, set, removed);

        void Own(uint id)
        {
            if (!_clusterLabels.ContainsKey(id) && _identities.TryGetValue(id, out var labels)) (now ??= []).TryAdd(id, new IdentityLabels(id, labels));
        }
    }

    /// <summary>The label changes the last commit made on a node: the cluster's, then the node's own.</summary>
    private (List<IdentityLabels> Set, List<IdentityLabels> Removed) LabelsDeltaOf(NodeState? node)
    {
        var (set, removed) = _lastLabelsDelta;
        return node?.LabelsChange is { } own && own.To == Version ? ([.. set, .. own.Set], [.. removed, .. own.Removed]) : (set, removed);
    }

    /// <summary>A node's label table as of the last commit, sorted by identity.</summary>
    private List<IdentityLabels> LabelTable(NodeState node)
    {
        var cluster = _labelsSorted ??= _clusterLabels.Values.OrderBy(l => l.Identity).ToArray();
        return node.PublishedLabels.Count == 0 ? [.. cluster] : cluster.Concat(node.PublishedLabels.Values).OrderBy(l => l.Identity).ToList();
    }
}

/// <summary>What one commit changed in a node's own part of its label table.</summary>
internal sealed record LabelsChange(long To, List<IdentityLabels> Set, List<IdentityLabels> Removed);
