namespace Mesh.Contracts.Agent;

/// <summary>Limits both ends of the agent protocol (agent.proto) agree on.</summary>
public static class AgentProtocol
{
    /// <summary>
    /// Largest message either side sends or accepts: 16 MiB. A node's whole snapshot is one message and grows with
    /// the cluster (every ipcache entry, every local identity's policy), so gRPC's usual 4 MiB receive limit is too
    /// tight for a large cluster, while a peer must not make the other buffer without bound. Over it, the sender
    /// fails the call with RESOURCE_EXHAUSTED and the receiver refuses the message with the same code.
    /// </summary>
    public const int MaxMessageSize = 16 * 1024 * 1024;

    /// <summary>
    /// Set in an <c>IdentityPolicy.identity</c> of a snapshot: the entries are not the identity's enforced policy but
    /// its audit layer, the policy it would have if the policies in audit mode were enforced too (every enforced
    /// policy plus the audit ones). The datapath judges a packet by the enforced policy; when that lets it pass and
    /// the audit layer would drop it, the packet still passes and its flow says AUDIT with the audit layer's rule.
    /// An identity has an audit layer only while a policy in audit mode selects it. Identities never use this bit
    /// (label identities are 24 bits, node-local CIDR/FQDN identities set bit 24), so the layer is keyed like any
    /// identity's policy everywhere: deltas, content hashes, the agent's map of maps.
    /// </summary>
    public const uint AuditLayer = 0x8000_0000u;

    /// <summary>Whether a snapshot policy's identity names an audit layer (see <see cref="AuditLayer"/>).</summary>
    public static bool IsAuditLayer(uint identity) => (identity & AuditLayer) != 0;
}
