using System.Text.Json.Serialization;
using Mesh.Contracts.Labels;

namespace Mesh.Contracts.Policies;

// The policy model every accepted document becomes: CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and
// Kubernetes NetworkPolicy alike, so the compiler has one path. Its semantics are Cilium's (see PolicyRule).

/// <summary>
/// The kind of document a policy was written as. Kubernetes NetworkPolicies are translated on parse. A policy is
/// one of its kind, namespace and name: a NetworkPolicy and a CiliumNetworkPolicy of one name both exist, as in
/// Kubernetes. Stored (events, states) by member name; <see cref="PolicyKinds.DocumentKind"/> is the name documents use.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<PolicyKind>))]
public enum PolicyKind { CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, KubernetesNetworkPolicy, ClusterNetworkPolicy }

/// <summary>
/// Per direction, whether the policy makes the endpoints it selects default-deny; null = Cilium's default: true
/// for a direction that has rules (allow or deny), false otherwise.
/// </summary>
public sealed record DefaultDeny(bool? Ingress, bool? Egress)
{
    public static readonly DefaultDeny Unspecified = new(null, null);
}

/// <summary>One rule set of a policy (<c>spec</c>, or one item of <c>specs</c>).</summary>
public sealed record PolicySpec(
    LabelSelector EndpointSelector,
    IReadOnlyList<PolicyRule> Ingress,
    IReadOnlyList<PolicyRule> IngressDeny,
    IReadOnlyList<PolicyRule> Egress,
    IReadOnlyList<PolicyRule> EgressDeny,
    string? Description)
{
    public DefaultDeny EnableDefaultDeny { get; init; } = DefaultDeny.Unspecified;

    /// <summary>The rule set's own labels (Cilium's <c>spec.labels</c>): metadata, never matched against traffic.</summary>
    public IReadOnlyList<Label> Labels { get; init; } = [];

    public bool HasIngress => Ingress.Count > 0 || IngressDeny.Count > 0;
    public bool HasEgress => Egress.Count > 0 || EgressDeny.Count > 0;

    /// <summary>Whether an endpoint this spec selects becomes default-deny for ingress.</summary>
    public bool EnforcesIngress => EnableDefaultDeny.Ingress ?? HasIngress;
    public bool EnforcesEgress => EnableDefaultDeny.Egress ?? HasEgress;

    public IReadOnlyList<PolicyRule> Rules(RuleSection section) => section switch
    {
        RuleSection.Ingress => Ingress,
        RuleSection.IngressDeny => IngressDeny,
        RuleSection.Egress => Egress,
        _ => EgressDeny,
    };
}

/// <summary>The four rule lists of a spec, in the order the compiler and rule references use.</summary>
public enum RuleSection { Ingress, IngressDeny, Egress, EgressDeny }

/// <summary>
/// A parsed policy. <paramref name="Namespace"/> is null for a cluster-wide policy; a namespaced policy only
/// selects, and only admits peers from, its own namespace unless a selector names another one.
/// <paramref name="Specs"/> holds <c>spec</c> (if given) first, then the items of <c>specs</c>.
/// Compare two policies with <see cref="PolicyJson.Hash"/>: the lists inside compare by reference.
/// </summary>
public sealed record NetworkPolicy(string? Namespace, string Name, IReadOnlyList<PolicySpec> Specs, PolicyKind Kind)
{
    /// <summary>Enforced, or only audited (see <see cref="PolicyMode"/>).</summary>
    public PolicyMode Mode { get; init; } = PolicyMode.Enforce;

    public bool Audited => Mode == PolicyMode.Audit;

    /// <summary>The tier its rules decide in: <see cref="PolicyTier.Policy"/> but for a ClusterNetworkPolicy.</summary>
    public PolicyTier Tier { get; init; } = PolicyTier.Policy;

    /// <summary>In the admin and baseline tiers, its place among the tier's policies: 0 (first) to 1000.</summary>
    public int Priority { get; init; }

    /// <summary>Whether its rules are first-match rules with actions (admin or baseline tier), not allow and deny lists.</summary>
    public bool Tiered => Tier != PolicyTier.Policy;

    /// <summary>A policy of one spec, of the kind its namespace implies.</summary>
    public NetworkPolicy(string? ns, string name, PolicySpec spec)
        : this(ns, name, [spec], ns is null ? PolicyKind.CiliumClusterwideNetworkPolicy : PolicyKind.CiliumNetworkPolicy) { }

    /// <summary>The only spec; for code that builds one-spec policies (tests, the benchmark).</summary>
    public PolicySpec Spec => Specs.Count == 1 ? Specs[0] : throw new InvalidOperationException($"{KindAndName} has {Specs.Count} specs");

    /// <summary>What tells this policy apart from every other: see <see cref="ReferenceOf"/>.</summary>
    public string Reference => ReferenceOf(Kind, Namespace, Name);

    /// <summary>For messages: the kind as documents write it, then namespace/name (<c>NetworkPolicy default/allow-web</c>).</summary>
    public string KindAndName => KindAndNameOf(Kind, Namespace, Name);

    public static string KindAndNameOf(PolicyKind kind, string? ns, string name) =>
        $"{PolicyKinds.DocumentKind(kind)} {(ns is null ? name : $"{ns}/{name}")}";

    /// <summary>
    /// The text that names one policy (and starts its rule texts, see <see cref="RuleText"/>): <c>namespace/name</c>
    /// for a CiliumNetworkPolicy, the bare name of a cluster-wide one, <c>NetworkPolicy namespace/name</c> for a
    /// Kubernetes NetworkPolicy, <c>ClusterNetworkPolicy name</c> for a ClusterNetworkPolicy. Mesh's native kind is Cilium's: its texts are the ones written before NetworkPolicies
    /// were kept apart from CiliumNetworkPolicies of the same name, so those stored in flows and snapshots keep their meaning.
    /// </summary>
    public static string ReferenceOf(PolicyKind kind, string? ns, string name) =>
        kind == PolicyKind.KubernetesNetworkPolicy ? $"{PolicyParser.KubernetesKind} {ns}/{name}"
        : kind == PolicyKind.ClusterNetworkPolicy ? $"{PolicyParser.TieredKind} {name}"
        : ns is null ? name : $"{ns}/{name}";

    /// <summary>A spec's endpoint selector as enforced: scoped to the policy's namespace.</summary>
    public LabelSelector EffectiveEndpointSelector(PolicySpec spec) => Scope(spec.EndpointSelector);

    /// <summary>A peer selector as enforced: scoped to the policy's namespace (Cilium's rule for namespaced policies).</summary>
    public LabelSelector Scope(LabelSelector selector) => Namespace is null ? selector : selector.WithNamespace(Namespace);
}
