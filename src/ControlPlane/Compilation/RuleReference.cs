using System.Globalization;
using System.Text.RegularExpressions;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Which rule of which policy produced an entry: <c>default/allow-frontend ingress[0]</c>, or for a policy of several
/// rule sets <c>default/allow-frontend specs[1].ingress[0]</c> (<paramref name="Spec"/> null = the policy has one).
/// </summary>
public sealed partial record RuleReference(string? Namespace, string Name, int? Spec, RuleSection Section, int Index) : IComparable<RuleReference>
{
    // Formatted once: every entry's digest names its rule by text. Derived from the other fields, so equality is unchanged.
    private readonly string _text = Format(Namespace, Name, Spec, Section, Index);

    public static RuleReference Of(NetworkPolicy policy, int spec, RuleSection section, int index) =>
        new(policy.Namespace, policy.Name, policy.Specs.Count > 1 ? spec : null, section, index);

    // Cluster-wide policies (no namespace) sort first; indexes compare as numbers, so ingress[2] < ingress[10].
    public int CompareTo(RuleReference? other)
    {
        if (other is null) return 1;
        if (ReferenceEquals(this, other)) return 0;
        var c = string.CompareOrdinal(Namespace ?? "", other.Namespace ?? "");
        if (c == 0) c = string.CompareOrdinal(Name, other.Name);
        if (c == 0) c = (Spec ?? 0).CompareTo(other.Spec ?? 0);
        if (c == 0) c = ((int)Section).CompareTo((int)other.Section);   // as numbers: Enum.CompareTo boxes
        return c != 0 ? c : Index.CompareTo(other.Index);
    }

    /// <summary><c>namespace/name</c> of the policy, or its bare name when cluster-wide.</summary>
    public string Policy => Namespace is null ? Name : $"{Namespace}/{Name}";

    public override string ToString() => _text;

    /// <summary>Reads back what <see cref="ToString"/> wrote (a snapshot carries rule texts, a delta references).</summary>
    public static RuleReference Parse(string text)
    {
        var m = TextForm().Match(text);
        if (!m.Success) throw new FormatException($"\"{text}\" is not a rule reference");
        var policy = m.Groups["policy"].Value;
        var slash = policy.IndexOf('/');
        int? spec = m.Groups["spec"].Success ? int.Parse(m.Groups["spec"].Value, CultureInfo.InvariantCulture) : null;
        var section = m.Groups["section"].Value switch
        {
            "ingress" => RuleSection.Ingress,
            "ingressDeny" => RuleSection.IngressDeny,
            "egress" => RuleSection.Egress,
            _ => RuleSection.EgressDeny,
        };
        return new RuleReference(slash < 0 ? null : policy[..slash], slash < 0 ? policy : policy[(slash + 1)..], spec, section,
            int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"^(?<policy>\S+) (?:specs\[(?<spec>\d+)\]\.)?(?<section>ingress|ingressDeny|egress|egressDeny)\[(?<index>\d+)\]$")]
    private static partial Regex TextForm();

    private static string Format(string? ns, string name, int? spec, RuleSection section, int index)
    {
        var sectionText = section switch
        {
            RuleSection.Ingress => "ingress",
            RuleSection.IngressDeny => "ingressDeny",
            RuleSection.Egress => "egress",
            _ => "egressDeny",
        };
        var rule = spec is { } s ? $"specs[{s}].{sectionText}[{index}]" : $"{sectionText}[{index}]";
        return ns is null ? $"{name} {rule}" : $"{ns}/{name} {rule}";
    }
}
