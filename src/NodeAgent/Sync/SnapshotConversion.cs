using System.Net;
using Mesh.Contracts.Agent;
using ProxyKind = Mesh.Contracts.Policies.ProxyKind;
using Mesh.NodeAgent.Datapath;

namespace Mesh.NodeAgent.Sync;

/// <summary>From the wire's snapshot to the datapath's own terms.</summary>
public static class SnapshotConversion
{
    public static DatapathSnapshot ToDatapath(NodeSnapshot s) => new(
        s.Version,
        s.Ipcache.Select(e => new IpCacheItem(IPNetwork.Parse(e.Cidr), e.Identity)).ToList(),
        s.Endpoints.Select(e => new EndpointItem(e.Id, e.InterfaceName, e.Identity)).ToList(),
        s.Policies.Select(p => new IdentityPolicyItem(p.Identity, p.IngressEnforced, p.EgressEnforced,
            p.Entries.Select(e => new PolicyEntryItem(
                e.Direction == Direction.Ingress ? TrafficDirection.Ingress : TrafficDirection.Egress,
                e.PeerIdentity, checked((byte)e.Protocol), checked((ushort)e.Port),
                // The datapath's enums carry the wire's values; the agent's validation refuses a value it does not know.
                (PolicyVerdict)e.Verdict, e.RuleIndex,
                checked((byte)e.PortPrefixLen), (PolicyTier)e.Tier, e.Rank, L7Wire.FromProto(e.L7)?.Kind ?? ProxyKind.None)).ToList())).ToList(),
        s.Rules.ToList());
}
