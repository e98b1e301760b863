using System.Net;
using System.Threading.Channels;
using Mesh.Contracts.Policies;

namespace Mesh.NodeAgent.Datapath;

/// <summary>
/// The kernel side of one node: enforces exactly one snapshot version at a time and reports verdicts as flows.
/// Apply is atomic: a packet is judged entirely by the previous version or entirely by the new one.
/// </summary>
public interface IDatapath : IDisposable
{
    /// <summary>The version the kernel enforces now (0 = nothing applied yet).</summary>
    ulong AppliedVersion { get; }

    /// <summary>Builds the standby generation from the snapshot and flips to it. Throws DatapathException and leaves
    /// the active generation enforcing when the snapshot cannot be applied. An endpoint whose interface is missing
    /// does not stop the others: it is left out of the version (as if it had no endpoint entry) and returned, and
    /// applying the same version again once its interface exists enforces it too.</summary>
    IReadOnlyList<WaitingEndpoint> Apply(DatapathSnapshot snapshot);

    /// <summary>Verdicts as they happen (drops, and the first packet of each allowed connection).</summary>
    ChannelReader<FlowEvent> Flows { get; }

    /// <summary>What the last successful Apply wrote and how long each step took; null before the first.</summary>
    ApplyStats? LastApply { get; }
}

/// <summary>
/// One Apply, step by step. Writes count map elements inserted, replaced or deleted; a delta apply writes the
/// difference to the version before, a full rebuild (the first apply of an agent, or after a failure left a
/// generation in an unknown state) clears and writes everything.
/// </summary>
/// <param name="EntriesWritten">elements written into the standby generation before the flip</param>
/// <param name="CatchUpEntriesWritten">elements written into the old generation after the flip</param>
/// <param name="FillStandby">writing the standby generation</param>
/// <param name="Flip">the one map update that switches generations</param>
/// <param name="WaitForPrograms">attaching new interfaces and waiting until no program reads the old generation</param>
/// <param name="CatchUp">bringing the old generation up to the new version</param>
/// <param name="Total">from building the generation image (after validation) to the end of the catch-up</param>
public sealed record ApplyStats(
    ulong Version,
    bool FullRebuild,
    int EntriesWritten,
    int CatchUpEntriesWritten,
    TimeSpan FillStandby,
    TimeSpan Flip,
    TimeSpan WaitForPrograms,
    TimeSpan CatchUp,
    TimeSpan Total);

public enum TrafficDirection : byte { Ingress = 0, Egress = 1 }

/// <summary>The proxies' sockets redirected traffic goes to (bpf/lib/proxy.h enum proxy_slot).</summary>
public enum ProxySlot : uint { Http = 0, DnsUdp = 1, DnsTcp = 2 }

/// <summary>skb->mark bits the datapath, the node's routing and the proxies agree on (bpf/lib/proxy.h).</summary>
public static class ProxyMarks
{
    public const uint Mask = 0x0f00;
    /// <summary>Set by the datapath on a packet it hands to a proxy socket: the node routes it locally (<see cref="RoutingTable"/>).</summary>
    public const uint ToProxy = 0x0200;
    /// <summary>SO_MARK of every socket a proxy opens towards an original destination: the proxy has judged that traffic.</summary>
    public const uint FromProxy = 0x0a00;
    /// <summary>The routing table with a local default route that marked packets look up.</summary>
    public const int RoutingTable = 2004;
}

/// <summary>Allow is the admin tier's ACCEPT; Pass is the admin tier's only: it skips the rest of the admin tier and
/// leaves the decision to the policy tier. The values are the wire's (agent.proto Verdict).</summary>
public enum PolicyVerdict : byte { Allow = 0, Deny = 1, Pass = 2 }

/// <summary>
/// Where an entry's rule stands (Kubernetes ClusterNetworkPolicy tiers). A packet is decided by the admin tier's
/// first matching rule in rank order (ACCEPT, DENY, or PASS on to the policy tier), then by the policy tier
/// (CiliumNetworkPolicy, CCNP, NetworkPolicy: deny wins, then the longer port prefix, then the peer; default deny
/// where enforced), then by the baseline tier's first matching rule in rank order. The values are the wire's
/// (agent.proto Tier).
/// </summary>
public enum PolicyTier : byte { Policy = 0, Admin = 1, Baseline = 2 }

/// <summary>One version for one node, in the datapath's own terms (no protobuf, no compiler types).</summary>
public sealed record DatapathSnapshot(
    ulong Version,
    IReadOnlyList<IpCacheItem> IpCache,
    IReadOnlyList<EndpointItem> Endpoints,
    IReadOnlyList<IdentityPolicyItem> Policies,
    IReadOnlyList<string> Rules);

public sealed record IpCacheItem(IPNetwork Cidr, uint Identity);

/// <summary>A local endpoint: the host side of its veth (in the agent's node namespace) and its identity.</summary>
public sealed record EndpointItem(string Id, string InterfaceName, uint Identity);

/// <summary>An endpoint of the applied version that the node does not enforce yet, because its interface is missing.</summary>
/// <param name="Reason">what the node namespace said, for people: "interface lxc1a2b3c4d not found in network namespace mesh-node-1 (ENODEV)"</param>
public sealed record WaitingEndpoint(string Id, string InterfaceName, string Reason);

/// <summary>The policy of every endpoint with this identity. A direction that is not enforced allows everything.
/// An identity with <see cref="Mesh.Contracts.Agent.AgentProtocol.AuditLayer"/> set is the audit layer of the identity
/// without it: what that identity's enforced policy lets pass and the layer would drop passes as <see cref="FlowVerdict.Audit"/>.</summary>
public sealed record IdentityPolicyItem(uint Identity, bool IngressEnforced, bool EgressEnforced, IReadOnlyList<PolicyEntryItem> Entries);

/// <summary>
/// PeerIdentity 0 = any peer, Protocol 0 = any protocol (and any port). PortPrefixLength is the number of leading
/// bits of Port that must match: 16 = exactly Port, 0 = any port, 13 with Port 8000 = 8000-8007; null means 16
/// for a non-zero Port and 0 for Port 0. Bits of Port past the prefix must be zero. In the policy tier deny beats
/// allow and Rank is 0; in the admin and baseline tiers Rank orders the rules (1 = first match, at most 65535), and
/// the entries of one rule share its rank. Proxy: on an allow, the node's proxy its traffic goes through (L7 rules).
/// </summary>
public sealed record PolicyEntryItem(TrafficDirection Direction, uint PeerIdentity, byte Protocol, ushort Port, PolicyVerdict Verdict,
    uint RuleIndex, byte? PortPrefixLength = null, PolicyTier Tier = PolicyTier.Policy, uint Rank = 0, ProxyKind Proxy = ProxyKind.None)
{
    /// <summary>The significant bits of Port, with the default applied.</summary>
    public int PortBits => PortPrefixLength ?? (Port == 0 ? 0 : 16);
}

/// <summary>Audit: forwarded, but the endpoint's audit layer (the policies in audit mode enforced too) would have
/// dropped it; the flow's reason and rule are the ones that would have dropped it.</summary>
public enum FlowVerdict : byte { Forwarded = 0, Dropped = 1, Audit = 2 }

/// <summary>Why a packet was dropped, or for an Audit flow why it would have been (Forwarded flows carry None).
/// NotEnforced: the pod's interface is held (<see cref="IInterfaceHold"/>) and no endpoint is enforced on it yet.
/// NoProxy: the allow sends the traffic through the node's proxy, and no proxy took it (none runs, or it bypassed it).</summary>
public enum DropReason : byte { None = 0, PolicyDenied = 1, DefaultDeny = 2, NotEnforced = 3, NoProxy = 4 }

/// <summary>
/// Holds a pod's host interface closed from the moment its runtime attached it until the runtime deletes it: whenever
/// no endpoint of the active version is enforced there (not yet, or no longer), every packet on it is dropped
/// (NotEnforced) instead of passing as on an interface that is no endpoint. An enforced endpoint's verdict comes first.
/// </summary>
public interface IInterfaceHold
{
    /// <summary>Holds <paramref name="interfaceName"/> of the node namespace. Returns whether packets are held now (no
    /// endpoint of the active version is enforced there). Throws DatapathException when the interface is missing.</summary>
    bool Hold(string interfaceName);

    /// <summary>Lifts the hold; an interface that is gone or was never held is fine.</summary>
    void Release(string interfaceName);

    bool IsHeld(string interfaceName);
}

public sealed record FlowEvent(
    DateTimeOffset Time,
    string? Endpoint,
    TrafficDirection Direction,
    IPAddress Source, ushort SourcePort,
    IPAddress Destination, ushort DestinationPort,
    byte Protocol,
    uint SourceIdentity, uint DestinationIdentity,
    FlowVerdict Verdict, DropReason Reason,
    ulong Version, string? Rule);

public sealed class DatapathException(string message, Exception? inner = null) : Exception(message, inner);
