using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Contracts.Policies;

/// <summary>
/// The text that names one rule of one policy, as snapshots, deltas, flows and entry-budget errors carry it. The
/// control plane writes it and the node agent orders rules by it, both through this one type:
/// <list type="bullet">
/// <item><c>default/allow-web ingress[0]</c>: a CiliumNetworkPolicy (<c>default/allow-web specs[1].ingress[0]</c> when it has several rule sets)</item>
/// <item><c>allow-web specs[1].egress[0]</c>: a CiliumClusterwideNetworkPolicy (no namespace)</item>
/// <item><c>NetworkPolicy default/allow-web ingress[0]</c>: a Kubernetes NetworkPolicy</item>
/// <item><c>ClusterNetworkPolicy isolate-tenants egress[2]</c>: a ClusterNetworkPolicy (no namespace)</item>
/// </list>
/// The part before the rule is the policy's <see cref="NetworkPolicy.ReferenceOf">reference</see>. A text without the
/// <c>NetworkPolicy</c> prefix, as every text written before the prefix existed, names a Cilium policy: namespaced
/// when it has a namespace. <paramref name="Spec"/> is null for a policy of one rule set.
/// </summary>
public readonly partial record struct RuleText(PolicyKind Kind, string? Namespace, string Name, int? Spec, RuleSection Section, int Index)
    : IComparable<RuleText>
{
    /// <summary>The policy's reference, the part of the text before the rule.</summary>
    public string Policy => NetworkPolicy.ReferenceOf(Kind, Namespace, Name);

    /// <summary>
    /// Rule order, the same on both sides of the wire (content hashes list rules in it): cluster-wide policies first,
    /// then namespace, name, kind (a CiliumNetworkPolicy before the NetworkPolicy of its name), spec, section
    /// (ingress, ingressDeny, egress, egressDeny) and index; numbers compare as numbers, so ingress[2] &lt; ingress[10].
    /// </summary>
    public int CompareTo(RuleText other)
    {
        var c = string.CompareOrdinal(Namespace ?? "", other.Namespace ?? "");
        if (c == 0) c = string.CompareOrdinal(Name, other.Name);
        if (c == 0) c = ((int)Kind).CompareTo((int)other.Kind);   // enums as numbers: Enum.CompareTo boxes
        if (c == 0) c = (Spec ?? 0).CompareTo(other.Spec ?? 0);
        if (c == 0) c = ((int)Section).CompareTo((int)other.Section);
        return c != 0 ? c : Index.CompareTo(other.Index);
    }

    public override string ToString()
    {
        var section = Section switch
        {
            RuleSection.Ingress => "ingress",
            RuleSection.IngressDeny => "ingressDeny",
            RuleSection.Egress => "egress",
            _ => "egressDeny",
        };
        return Spec is { } spec
            ? string.Create(CultureInfo.InvariantCulture, $"{Policy} specs[{spec}].{section}[{Index}]")
            : string.Create(CultureInfo.InvariantCulture, $"{Policy} {section}[{Index}]");
    }

    /// <summary>Reads back what <see cref="ToString"/> wrote.</summary>
    public static RuleText Parse(string text)
    {
        var m = TextForm().Match(text);
        if (!m.Success) throw new FormatException($"\"{text}\" is not a rule reference");
        var policy = m.Groups["policy"].Value;
        var slash = policy.IndexOf('/', StringComparison.Ordinal);
        var prefix = m.Groups["kind"].Value;
        if (prefix == PolicyParser.KubernetesKind && slash < 0)
            throw new FormatException($"\"{text}\" is not a rule reference: a {PolicyParser.KubernetesKind} has a namespace");
        if (prefix == PolicyParser.TieredKind && slash >= 0)
            throw new FormatException($"\"{text}\" is not a rule reference: a {PolicyParser.TieredKind} has no namespace");
        var kind = prefix switch
        {
            PolicyParser.KubernetesKind => PolicyKind.KubernetesNetworkPolicy,
            PolicyParser.TieredKind => PolicyKind.ClusterNetworkPolicy,
            _ => slash < 0 ? PolicyKind.CiliumClusterwideNetworkPolicy : PolicyKind.CiliumNetworkPolicy,
        };
        var section = m.Groups["section"].Value switch
        {
            "ingress" => RuleSection.Ingress,
            "ingressDeny" => RuleSection.IngressDeny,
            "egress" => RuleSection.Egress,
            _ => RuleSection.EgressDeny,
        };
        return new RuleText(kind, slash < 0 ? null : policy[..slash], slash < 0 ? policy : policy[(slash + 1)..],
            m.Groups["spec"].Success ? int.Parse(m.Groups["spec"].Value, CultureInfo.InvariantCulture) : null, section,
            int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^(?:(?<kind>" + PolicyParser.KubernetesKind + "|" + PolicyParser.TieredKind + @") )?(?<policy>\S+) (?:specs\[(?<spec>\d+)\]\.)?(?<section>ingress|ingressDeny|egress|egressDeny)\[(?<index>\d+)\]$")]
    private static partial Regex TextForm();
}
