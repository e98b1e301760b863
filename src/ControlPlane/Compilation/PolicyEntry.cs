using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

// The compiler's own view of a policy map entry. Deliberately not the protobuf or the BPF struct: only ToProto and
// the agent's interop layer translate, so the compiler stays testable without either.

public enum Direction : byte { Ingress = 0, Egress = 1 }

public enum Verdict : byte { Allow = 0, Deny = 1 }

/// <summary>
/// What the datapath looks up. Peer 0 = any peer, protocol <see cref="Protocol.Any"/> = any protocol (and port 0),
/// port 0 with prefix length 0 = any port. <see cref="PortPrefixLength"/> is the number of leading bits of the port
/// that must match: 16 = exactly <see cref="Port"/>, fewer = an aligned block of a range (8000/13 = 8000-8007).
/// Ordered by direction, peer, protocol, port, prefix length: the order entries appear in a snapshot.
/// </summary>
public readonly record struct PolicyEntryKey(Direction Direction, uint Peer, Protocol Protocol, ushort Port, byte PortPrefixLength)
    : IComparable<PolicyEntryKey>
{
    public const uint AnyPeer = 0;

    public int CompareTo(PolicyEntryKey other)
    {
        // Enums compared as their numbers: Enum.CompareTo takes an object, and boxing in the sort of every entry counts.
        var c = ((byte)Direction).CompareTo((byte)other.Direction);
        if (c == 0) c = Peer.CompareTo(other.Peer);
        if (c == 0) c = ((byte)Protocol).CompareTo((byte)other.Protocol);
        if (c == 0) c = Port.CompareTo(other.Port);
        return c != 0 ? c : PortPrefixLength.CompareTo(other.PortPrefixLength);
    }

    public override string ToString() =>
        $"{Direction.ToString().ToLowerInvariant()} peer={(Peer == AnyPeer ? "any" : Peer)} {(Protocol == Protocol.Any ? "any" : Protocol.ToString().ToUpperInvariant())}/{PortText}";

    private string PortText => PortPrefixLength switch
    {
        0 => "*",
        PortPrefixes.ExactPort => Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        _ => $"{Port}/{PortPrefixLength}",
    };
}

/// <summary>
/// One entry of an identity's policy; <paramref name="RuleIndex"/> points into <see cref="NodeSnapshot.Rules"/>.
/// <paramref name="L7Redirect"/>: an allow whose traffic belongs to the L7 proxy (rules.http, rules.dns, toFQDNs);
/// the datapath treats it as a plain allow until the proxy exists.
/// </summary>
public sealed record PolicyEntry(Direction Direction, uint Peer, Protocol Protocol, ushort Port, Verdict Verdict, uint RuleIndex,
    byte PortPrefixLength, bool L7Redirect)
{
    public PolicyEntryKey Key => new(Direction, Peer, Protocol, Port, PortPrefixLength);
}

/// <summary>
/// The policy one local identity is judged by. A direction that no policy selects is not enforced (everything
/// passes); an enforced direction denies whatever no entry allows.
/// </summary>
/// <paramref name="IngressSelectedBy"/> and <paramref name="EgressSelectedBy"/> name the policies that enforce each
/// direction (see <see cref="PolicyRef.MaxPerDirection"/>): what a default-deny drop is attributed to.
public sealed record IdentityPolicy(uint Identity, bool IngressEnforced, bool EgressEnforced, IReadOnlyList<PolicyEntry> Entries,
    IReadOnlyList<PolicyRef> IngressSelectedBy, IReadOnlyList<PolicyRef> EgressSelectedBy);

/// <summary>
/// A policy by the names Hubble shows: its document kind (<c>NetworkPolicy</c> for Kubernetes'), namespace ("" for
/// a cluster-wide one) and name. Ordered by namespace, name, then kind.
/// </summary>
public sealed record PolicyRef(string Kind, string Namespace, string Name) : IComparable<PolicyRef>
{
    /// <summary>
    /// The most policies an identity's snapshot names per direction: enough to explain a default deny, while a
    /// namespace-wide selector over hundreds of policies cannot grow every snapshot.
    /// </summary>
    public const int MaxPerDirection = 16;

    public static PolicyRef Of(NetworkPolicy policy) => new(PolicyKinds.DocumentKind(policy.Kind), policy.Namespace ?? "", policy.Name);

    /// <summary>The first <see cref="MaxPerDirection"/> distinct policies, in order.</summary>
    public static PolicyRef[] Bounded(IEnumerable<PolicyRef> policies) => policies.Distinct().Order().Take(MaxPerDirection).ToArray();

    public int CompareTo(PolicyRef? other)
    {
        if (other is null) return 1;
        var c = string.CompareOrdinal(Namespace, other.Namespace);
        if (c == 0) c = string.CompareOrdinal(Name, other.Name);
        return c != 0 ? c : string.CompareOrdinal(Kind, other.Kind);
    }

    /// <summary><c>CiliumNetworkPolicy default/web</c>: the form the content hash takes.</summary>
    public override string ToString() => $"{Kind} {Namespace}/{Name}";
}

/// <summary>The labels of an identity a node's flows can name (sorted <c>source:key=value</c>, as <see cref="LabelSet"/> keeps them).</summary>
public sealed record IdentityLabels(uint Identity, LabelSet Labels);

public sealed record IpCacheEntry(string Cidr, uint Identity);

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
