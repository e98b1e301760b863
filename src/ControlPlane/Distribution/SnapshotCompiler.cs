using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Distribution;

/// <summary>Feeds the pure compiler from a ClusterView; remembers the last result per node so watchers of one
/// node share one compile per version.</summary>
public sealed class SnapshotCompiler
{
    private readonly Dictionary<string, NodeSnapshot> _last = new(StringComparer.Ordinal);

    public NodeSnapshot For(string node, ClusterView view)
    {
        lock (_last)
            if (_last.TryGetValue(node, out var cached) && cached.Version == view.Position.Value) return cached;
        var snapshot = PolicyCompiler.Compile(node, view.Position.Value,
            view.Policies.Values.Select(p => p.Policy).ToList(),
            view.Identities.ToDictionary(i => i.Key, i => i.Value.Labels),
            view.Endpoints.Values.Select(e => new CompilerEndpoint(e.Id, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Identity)).ToList());
        lock (_last) _last[node] = snapshot;
        return snapshot;
    }
}
