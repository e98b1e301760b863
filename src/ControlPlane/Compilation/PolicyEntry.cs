using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// The compiler's own view of a policy map entry. Deliberately not the protobuf or the BPF struct: only ToProto and
// the agent's interop layer translate, so the compiler stays testable without either.

public enum Direction : byte { Ingress = 0, Egress = 1 }

/// <summary>What an entry does with what it matches. <see cref="Pass"/> is the admin tier's only: the rest of the admin
/// tier is skipped and the policy tier decides.</summary>
public enum Verdict : byte { Allow = 0, Deny = 1, Pass = 2 }

/// <summary>
/// What the datapath looks up. Peer 0 = any peer, protocol <see cref="Protocol.Any"/> = any protocol (and port 0),
/// port 0 with prefix length 0 = any port. <see cref="PortPrefixLength"/> is the number of leading bits of the port
/// that must match: 16 = exactly <see cref="Port"/>, fewer = an aligned block of a range (8000/13 = 8000-8007).
/// <see cref="Tier"/>: one key holds an entry of each tier (the datapath keeps an admin part and a lower part per key).
/// Ordered by direction, peer, protocol, port, prefix length, tier: the order entries appear in a snapshot.
/// </summary>
public readonly record struct PolicyEntryKey(Direction Direction, uint Peer, Protocol Protocol, ushort Port, byte PortPrefixLength,
    PolicyTier Tier = PolicyTier.Policy) : IComparable<PolicyEntryKey>
{
    public const uint AnyPeer = 0;

    public int CompareTo(PolicyEntryKey other)
    {
        // Enums compared as their numbers: Enum.CompareTo takes an object, and boxing in the sort of every entry counts.
        var c = ((byte)Direction).CompareTo((byte)other.Direction);
        if (c == 0) c = Peer.CompareTo(other.Peer);
        if (c == 0) c = ((byte)Protocol).CompareTo((byte)other.Protocol);
        if (c == 0) c = Port.CompareTo(other.Port);
        if (c == 0) c = PortPrefixLength.CompareTo(other.PortPrefixLength);
        return c != 0 ? c : ((byte)Tier).CompareTo((byte)other.Tier);
    }

    public override string ToString() =>
        $"{(Tier == PolicyTier.Policy ? "" : $"{Tier.ToString().ToLowerInvariant()} ")}{Direction.ToString().ToLowerInvariant()} peer={(Peer == AnyPeer ? "any" : Peer)} {(Protocol == Protocol.Any ? "any" : Protocol.ToString().ToUpperInvariant())}/{PortText}";

    private string PortText => PortPrefixLength switch
    {
        0 => "*",
        PortPrefixes.ExactPort => Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => $"{Port}/{PortPrefixLength}",
    };
}

/// <summary>
/// One entry of an identity's policy; <paramref name="RuleIndex"/> points into <see cref="NodeSnapshot.Rules"/>.
/// <paramref name="L7"/>: on an allow whose traffic goes through the node's proxy (rules.http, rules.dns), what the proxy
/// lets through. <paramref name="Rank"/>: 0 in the policy tier; in
/// the admin and baseline tiers the rule's place in first-match order among the identity's rules of that tier and
/// direction (1 = first).
/// </summary>
public sealed record PolicyEntry(Direction Direction, uint Peer, Protocol Protocol, ushort Port, Verdict Verdict, uint RuleIndex,
    byte PortPrefixLength, L7Policy? L7, PolicyTier Tier = PolicyTier.Policy, ushort Rank = 0)
{
    public bool L7Redirect => L7 is not null;

    public PolicyEntryKey Key => new(Direction, Peer, Protocol, Port, PortPrefixLength, Tier);
}

/// <summary>
/// The policy one local identity is judged by. A direction that no policy selects is not enforced (everything
/// passes); an enforced direction denies whatever no entry allows.
/// </summary>
public sealed record IdentityPolicy(uint Identity, bool IngressEnforced, bool EgressEnforced, IReadOnlyList<PolicyEntry> Entries);

public sealed record IpCacheEntry(string Cidr, uint Identity);

/// <summary>
/// The node-local identity of one toFQDNs match. It comes without addresses: the node's DNS proxy learns them from
/// the answers it lets through.
/// </summary>
public sealed record FqdnSelector(uint Identity, DnsMatch Match);

/// <summary>An endpoint on this node: the host side of its veth is where its programs are attached.</summary>
public sealed record LocalEndpoint(string Id, string Interface, string Ip, uint Identity);

/// <summary>
/// A workload anywhere in the cluster, as the compiler needs it. <paramref name="Ports"/>: the ports it serves under
/// a name, which the named ports of policies resolve to (null = none).
/// </summary>
public sealed record CompilerEndpoint(string Id /* "ns/name" */, string Node, string Ip, string Interface, uint Identity,
    IReadOnlyList<ContainerPort>? Ports = null)
{
    public IReadOnlyList<ContainerPort> Ports { get; init; } = Ports ?? [];

    // The ports compare by content: re-registering the same endpoint is no change.
    public bool Equals(CompilerEndpoint? other) =>
        other is not null && (Id, Node, Ip, Interface, Identity) == (other.Id, other.Node, other.Ip, other.Interface, other.Identity)
        && Ports.SequenceEqual(other.Ports);

    public override int GetHashCode() => HashCode.Combine(Id, Node, Ip, Interface, Identity, Ports.Count);
}

/// <summary>
/// A node of the cluster and its own addresses. In every node's ipcache they are the reserved identity remote-node,
/// as Cilium maps other nodes; the agent of the node itself maps its own addresses to host.
/// </summary>
public sealed record ClusterNode(string Name, IReadOnlyList<string> Addresses)
{
    /// <summary>Who claims a node's address among the endpoints claiming addresses: the first claimant by id wins.</summary>
    public string AddressHolder => $"node:{Name}";
}
