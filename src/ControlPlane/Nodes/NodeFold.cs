using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Nodes;

/// <summary>How node events change the cluster view: the addresses agents registered, what each node reported it enforces, and which are drained.</summary>
internal static class NodeFold
{
    public static ClusterView Apply(ClusterView view, NodeEvent e, RecordedEvent recorded) => e switch
    {
        NodeEvent.NodeRegistered n => view with
        {
            Nodes = view.Nodes.SetItem(n.Name, new NodeRecord(n.Name, n.Addresses, recorded.Position)),
            Changes = view.Change(recorded.Position, ViewPart.Nodes, n.Name),
        },
        NodeEvent.NodeEnforced enforced => WithEnforcement(view, enforced.Name, r => r with
        {
            Enforced = enforced, Error = enforced.Version >= r.FailedVersion ? null : r.Error,
        }),
        NodeEvent.NodeEndpointsWaiting w => WithEnforcement(view, w.Name, r => r with { Waiting = w.Waiting }),
        NodeEvent.NodeApplyFailed f => WithEnforcement(view, f.Name, r => r with { FailedVersion = f.Version, Error = f.Error }),
        NodeEvent.NodeDeleted d => view with
        {
            Nodes = view.Nodes.Remove(d.Name),
            Enforcement = view.Enforcement.Remove(d.Name),
            DrainedNodes = view.DrainedNodes.Remove(d.Name),
            Changes = view.Change(recorded.Position, ViewPart.Nodes, d.Name),
        },
        // No snapshot changes: the endpoints a drain removes are endpoint events of their own.
        NodeEvent.NodeDrained d => view with { DrainedNodes = view.DrainedNodes.Add(d.Name) },
        NodeEvent.NodeUncordoned u => view with { DrainedNodes = view.DrainedNodes.Remove(u.Name) },
        _ => view,
    };

    private static ClusterView WithEnforcement(ClusterView view, string node, Func<NodeEnforcementRecord, NodeEnforcementRecord> change) =>
        view with { Enforcement = view.Enforcement.SetItem(node, change(view.Enforcement.GetValueOrDefault(node) ?? NodeEnforcementRecord.None)) };
}
