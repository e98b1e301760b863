using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Policies;

/// <summary>IANA protocol numbers; <see cref="Any"/> = every protocol.</summary>
public enum Protocol : byte { Any = 0, Icmp = 1, Tcp = 6, Udp = 17, Sctp = 132 }

/// <summary>
/// A destination port, or the range <c>Port..EndPort</c> when <see cref="EndPort"/> is above it, with its
/// protocol. Port 0 means every port, unless <see cref="Name"/> is set: a named port (Port 0, no range), which
/// stands for the numbers the endpoints on the receiving side serve under that name (see <see cref="ContainerPort"/>).
/// </summary>
public sealed record PortProtocol(ushort Port, Protocol Protocol, ushort EndPort = 0, string? Name = null)
{
    public static PortProtocol Tcp(ushort port) => new(port, Protocol.Tcp);
    public static PortProtocol Udp(ushort port) => new(port, Protocol.Udp);
    public static PortProtocol Named(string name, Protocol protocol) => new(0, protocol, 0, name);

    public bool IsNamed => Name is not null;
    public bool IsRange => EndPort > Port;
    public ushort LastPort => IsRange ? EndPort : Port;

    public override string ToString() =>
        $"{(Name is not null ? Name : Port == 0 ? "*" : IsRange ? $"{Port}-{EndPort}" : Port)}/{Protocol.ToString().ToUpperInvariant()}";
}

/// <summary>One HTTP rule of <c>rules.http</c>: every given field must match (method and path are regular expressions).</summary>
public sealed record HttpRule(string? Method, string? Path, string? Host, IReadOnlyList<string> Headers);

/// <summary>A DNS name match of <c>rules.dns</c> or <c>toFQDNs</c>: an exact name, or a pattern where <c>*</c> matches within a label.</summary>
public sealed record DnsMatch(string? MatchName, string? MatchPattern)
{
    public override string ToString() => MatchName is not null ? $"name={MatchName}" : $"pattern={MatchPattern}";
}

/// <summary>L7 rules of a port rule. Traffic they cover is redirected to the proxy of that protocol.</summary>
public sealed record L7Rules(IReadOnlyList<HttpRule> Http, IReadOnlyList<DnsMatch> Dns)
{
    public bool IsEmpty => Http.Count == 0 && Dns.Count == 0;
}

/// <summary>One item of <c>toPorts</c>: ports, and the L7 rules that apply on them (null = L4 only).</summary>
public sealed record PortRule(IReadOnlyList<PortProtocol> Ports, L7Rules? Rules = null)
{
    public bool RedirectsToProxy => Rules is { IsEmpty: false };
}

/// <summary>The entities of Cilium: classes of peers that have no labels of their own.</summary>
public enum Entity { All, World, Cluster, Host, RemoteNode, Init, Health, Unmanaged, KubeApiServer, Ingress }

/// <summary>One peer selector of a rule. A closed family: endpoints by labels, an entity, a CIDR, a DNS name.</summary>
public abstract record PeerSelector
{
    /// <summary>fromEndpoints / toEndpoints / Kubernetes podSelector+namespaceSelector.</summary>
    public sealed record Endpoints(LabelSelector Selector) : PeerSelector;

    /// <summary>fromEntities / toEntities.</summary>
    public sealed record EntityPeer(Entity Entity) : PeerSelector;

    /// <summary>
    /// fromCIDR / fromCIDRSet / ipBlock: addresses in <paramref name="Prefix"/> but in none of <paramref name="Except"/>.
    /// <paramref name="SelectsEndpoints"/> is a Kubernetes ipBlock's meaning: the cluster's endpoints whose addresses
    /// it covers are peers too, as the NetworkPolicy e2e tests expect. Without it (Cilium's toCIDR/fromCIDR/CIDRSet)
    /// only addresses outside the cluster's endpoints match: an endpoint is always its own identity.
    /// </summary>
    public sealed record Cidr(CidrPrefix Prefix, IReadOnlyList<CidrPrefix> Except, bool SelectsEndpoints = false) : PeerSelector;

    /// <summary>toFQDNs: the addresses a DNS name resolves to (egress only).</summary>
    public sealed record Fqdn(DnsMatch Match) : PeerSelector;

    private PeerSelector() { }
}

/// <summary>
/// One ingress or egress rule, with Cilium's semantics on which the compiler relies:
/// <paramref name="Peers"/> null = no L3 restriction; a rule with neither peers nor ports allows nothing (yet still
/// makes its direction default-deny); ports only = any peer on those ports; peers only = those peers on any port.
/// <paramref name="Requires"/> (fromRequires/toRequires) grants nothing itself: it narrows the endpoint selectors of
/// every rule in the same section of every policy selecting the same endpoint.
/// </summary>
public sealed record PolicyRule(IReadOnlyList<PeerSelector>? Peers, IReadOnlyList<PortRule> ToPorts, IReadOnlyList<LabelSelector> Requires)
{
    /// <summary>A rule of endpoint selectors and plain L4 ports.</summary>
    public PolicyRule(IReadOnlyList<LabelSelector>? peers, IReadOnlyList<PortProtocol> ports)
        : this(peers?.Select(p => (PeerSelector)new PeerSelector.Endpoints(p)).ToList(), ports.Count == 0 ? [] : [new PortRule(ports)], []) { }

    /// <summary>In the admin and baseline tiers, what the rule does with what it matches; null in the policy tier,
    /// where the section it is in (ingress or ingressDeny …) says.</summary>
    public RuleAction? Action { get; init; }

    /// <summary>The rule's own name (a ClusterNetworkPolicy rule's <c>name</c>), for people; never matched.</summary>
    public string? Name { get; init; }

    public bool AllowsNothing => Peers is null && ToPorts.Count == 0;

    /// <summary>Every port of every port rule.</summary>
    public IEnumerable<PortProtocol> Ports => ToPorts.SelectMany(p => p.Ports);

    /// <summary>Whether a port is named: its numbers then depend on the endpoints, not on the rule alone.</summary>
    public bool HasNamedPorts
    {
        get
        {
            foreach (var portRule in ToPorts)
                foreach (var port in portRule.Ports)
                    if (port.IsNamed) return true;
            return false;
        }
    }
}
