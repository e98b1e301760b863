using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// Judges a connection the way the datapath does, from compiled snapshots only: the source's node resolves the
/// destination address in its ipcache (longest prefix, world on a miss) and judges the source's egress; the
/// destination's node resolves the source address and judges the destination's ingress. Each judgement: the
/// entries for the peer and for any peer whose protocol and port prefix match; a deny wins, else an allow
/// passes (an L7 redirect counts as an allow until the proxy exists), else an enforced direction drops.
/// </summary>
internal static class SnapshotEvaluator
{
    public static bool Connects(NodeSnapshot sourceNode, string sourceIp, NodeSnapshot destinationNode, string destinationIp,
        Protocol protocol, ushort port)
    {
        var source = Local(sourceNode, sourceIp);
        var destination = Local(destinationNode, destinationIp);
        return Allows(sourceNode.PolicyOf(source), Direction.Egress, Resolve(sourceNode, destinationIp), protocol, port)
            && Allows(destinationNode.PolicyOf(destination), Direction.Ingress, Resolve(destinationNode, sourceIp), protocol, port);
    }

    private static uint Local(NodeSnapshot node, string ip) =>
        node.Endpoints.Single(e => e.Ip == ip).Identity;

    public static uint Resolve(NodeSnapshot node, string ip)
    {
        var address = CidrPrefix.Parse(ip);
        var best = node.IpCache.Select(e => (Prefix: CidrPrefix.Parse(e.Cidr), e.Identity))
            .Where(e => e.Prefix.Contains(address)).OrderByDescending(e => e.Prefix.Length).FirstOrDefault();
        return best.Identity == 0 ? NumericIdentity.World.Value : best.Identity;
    }

    private static bool Allows(IdentityPolicy? policy, Direction direction, uint peer, Protocol protocol, ushort port)
    {
        if (policy is null) return true;
        var hits = policy.Entries.Where(e => e.Direction == direction
            && (e.Peer == peer || e.Peer == PolicyEntryKey.AnyPeer)
            && (e.Protocol == Protocol.Any || e.Protocol == protocol)
            && PortMatches(e, port)).ToList();
        if (hits.Any(e => e.Verdict == Verdict.Deny)) return false;
        if (hits.Count > 0) return true;
        return !(direction == Direction.Ingress ? policy.IngressEnforced : policy.EgressEnforced);
    }

    private static bool PortMatches(PolicyEntry entry, ushort port)
    {
        if (entry.PortPrefixLength == 0) return true;
        var shift = 16 - entry.PortPrefixLength;
        return port >> shift == entry.Port >> shift;
    }
}
