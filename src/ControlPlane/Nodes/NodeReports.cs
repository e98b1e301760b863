using System.Collections.Immutable;
using Mesh.ControlPlane.State;

namespace Mesh.ControlPlane.Nodes;

public static class NodeReports
{
    /// <summary>
    /// Where a node stands as this replica can tell: what its stream recorded (the same on every replica, and after
    /// restarts), or what its agent told this replica when that is newer (the stream follows within the report
    /// interval). Connected says whether the agent talks to this replica.
    /// </summary>
    public static NodeReport Of(this NodeTracker tracker, ClusterView view, string node)
    {
        var local = tracker.Get(node);
        if (view.Enforcement.GetValueOrDefault(node) is not { } recorded) return local;
        var durable = new NodeReport(recorded.Enforced?.Version ?? 0, recorded.Enforced?.Since, local.Connected, recorded.Error,
            recorded.Waiting.ToImmutableSortedDictionary(w => w.Endpoint, w => w.Reason, StringComparer.Ordinal),
            recorded.Enforced?.ContentHash ?? "", recorded.FailedVersion);
        var localIsNewer = local.AckedVersion > durable.AckedVersion || local.FailedVersion > durable.FailedVersion
            || (local.AckedVersion == durable.AckedVersion && local.Connected);
        return localIsNewer ? local : durable;
    }
}
