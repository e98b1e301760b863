using Mesh.ControlPlane.Compilation;
using Proto = Mesh.Contracts.Agent;

namespace Mesh.ControlPlane.Distribution;

/// <summary>
/// A node delta on the wire. Entries name their rule by text through the delta's own rule list: node rule indexes
/// shift whenever a rule appears or goes, so the agent renumbers from the rule texts it holds.
/// </summary>
public static class DeltaWire
{
    public static Proto.NodeSnapshotDelta ToProto(NodeDelta delta, long from)
    {
        var wire = new Proto.NodeSnapshotDelta
        {
            Node = delta.Node, FromVersion = checked((ulong)from), Version = checked((ulong)delta.ToVersion), ContentHash = delta.ContentHash,
        };
        wire.IpcacheAdded.AddRange(delta.IpCacheAdded.Select(Entry));
        wire.IpcacheRemoved.AddRange(delta.IpCacheRemoved.Select(Entry));
        wire.FqdnsAdded.AddRange(delta.FqdnsAdded.Select(NodeSnapshot.ToProto));
        wire.FqdnsRemoved.AddRange(delta.FqdnsRemoved.Select(NodeSnapshot.ToProto));
        wire.EndpointsAdded.AddRange(delta.EndpointsAdded.Select(Endpoint));
        wire.EndpointsRemoved.AddRange(delta.EndpointsRemoved.Select(Endpoint));
        wire.PoliciesSet.AddRange(delta.PoliciesSet.Select(h => new Proto.IdentityPolicy
        {
            Identity = h.Identity, IngressEnforced = h.IngressEnforced, EgressEnforced = h.EgressEnforced,
        }));
        wire.PoliciesRemoved.AddRange(delta.PoliciesRemoved);
        var rules = new Dictionary<RuleReference, uint>();
        foreach (var e in delta.EntriesAdded)
        {
            if (!rules.TryGetValue(e.Rule, out var index))
            {
                rules[e.Rule] = index = (uint)rules.Count;
                wire.Rules.Add(e.Rule.ToString());
            }
            wire.EntriesAdded.Add(Change(e, index));
        }
        wire.EntriesRemoved.AddRange(delta.EntriesRemoved.Select(e => Change(e, 0)));
        return wire;
    }

    private static Proto.IpCacheEntry Entry(IpCacheEntry e) => new() { Cidr = e.Cidr, Identity = e.Identity };

    private static Proto.LocalEndpoint Endpoint(LocalEndpoint e) => new() { Id = e.Id, InterfaceName = e.Interface, Ip = e.Ip, Identity = e.Identity };

    private static Proto.IdentityEntry Change(EntryChange e, uint ruleIndex) => new()
    {
        Identity = e.Identity,
        Entry = new Proto.PolicyEntry
        {
            Direction = e.Key.Direction == Direction.Ingress ? Proto.Direction.Ingress : Proto.Direction.Egress,
            PeerIdentity = e.Key.Peer,
            Protocol = (uint)e.Key.Protocol,
            Port = e.Key.Port,
            PortPrefixLen = e.Key.PortPrefixLength,
            L7 = Proto.L7Wire.ToProto(e.L7),
            Verdict = NodeSnapshot.ToProto(e.Verdict),
            RuleIndex = ruleIndex,
            Tier = NodeSnapshot.ToProto(e.Key.Tier),
            Rank = e.Rank,
        },
    };
}
