using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Policies;

// The CiliumNetworkPolicy shape, as far as Mesh enforces it today: endpoint selectors and L4 ports. Documents
// using anything else are refused by PolicyParser rather than half-enforced.

/// <summary>IANA protocol numbers; <see cref="Any"/> = every protocol.</summary>
public enum Protocol : byte { Any = 0, Icmp = 1, Tcp = 6, Udp = 17, Sctp = 132 }

/// <summary>A destination port and protocol. Port 0 means every port.</summary>
public sealed record PortProtocol(ushort Port, Protocol Protocol)
{
    public static PortProtocol Tcp(ushort port) => new(port, Protocol.Tcp);
    public static PortProtocol Udp(ushort port) => new(port, Protocol.Udp);

    public override string ToString() => $"{(Port == 0 ? "*" : Port)}/{Protocol.ToString().ToUpperInvariant()}";
}

/// <summary>
/// One ingress or egress rule. <paramref name="Peers"/> comes from fromEndpoints (ingress) or toEndpoints
/// (egress); null = no L3 restriction. Cilium's semantics, on which the compiler relies:
/// a rule with neither peers nor ports allows nothing (yet still makes its direction default-deny);
/// ports only = any peer on those ports; peers only = those peers on any port.
/// </summary>
public sealed record PolicyRule(IReadOnlyList<LabelSelector>? Peers, IReadOnlyList<PortProtocol> Ports)
{
    public bool AllowsNothing => Peers is null && Ports.Count == 0;
}

public sealed record PolicySpec(
    LabelSelector EndpointSelector,
    IReadOnlyList<PolicyRule> Ingress,
    IReadOnlyList<PolicyRule> IngressDeny,
    IReadOnlyList<PolicyRule> Egress,
    IReadOnlyList<PolicyRule> EgressDeny,
    string? Description)
{
    public bool HasIngress => Ingress.Count > 0 || IngressDeny.Count > 0;
    public bool HasEgress => Egress.Count > 0 || EgressDeny.Count > 0;
}

/// <summary>
/// A parsed policy. <paramref name="Namespace"/> is null for a cluster-wide policy; a namespaced policy only
/// selects, and only admits peers from, its own namespace unless a selector names another one.
/// Compare two policies with <see cref="PolicyJson.Hash"/>: the lists inside compare by reference.
/// </summary>
public sealed record NetworkPolicy(string? Namespace, string Name, PolicySpec Spec)
{
    /// <summary><c>namespace/name</c>, or the bare name of a cluster-wide policy.</summary>
    public string Reference => Namespace is null ? Name : $"{Namespace}/{Name}";

    /// <summary>The endpoint selector as enforced: scoped to the policy's namespace.</summary>
    public LabelSelector EffectiveEndpointSelector => Scope(Spec.EndpointSelector);

    /// <summary>A peer selector as enforced: scoped to the policy's namespace (Cilium's rule for namespaced policies).</summary>
    public LabelSelector Scope(LabelSelector selector) => Namespace is null ? selector : selector.WithNamespace(Namespace);
}
