using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Compilation;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// Judges a connection the way the datapath does, from compiled snapshots only (<see cref="SnapshotLookup"/>): the
/// source's node resolves the destination address and judges the source's egress; the destination's node resolves
/// the source address and judges the destination's ingress.
/// </summary>
internal static class SnapshotEvaluator
{
    public static bool Connects(NodeSnapshot sourceNode, string sourceIp, NodeSnapshot destinationNode, string destinationIp,
        Protocol protocol, ushort port)
    {
        var source = Local(sourceNode, sourceIp);
        var destination = Local(destinationNode, destinationIp);
        return SnapshotLookup.Decide(sourceNode, source, Direction.Egress, Resolve(sourceNode, destinationIp), protocol, port).Passes
            && SnapshotLookup.Decide(destinationNode, destination, Direction.Ingress, Resolve(destinationNode, sourceIp), protocol, port).Passes;
    }

    private static uint Local(NodeSnapshot node, string ip) =>
        node.Endpoints.Single(e => e.Ip == ip).Identity;

    public static uint Resolve(NodeSnapshot node, string ip) => SnapshotLookup.Resolve(node, ip);
}
