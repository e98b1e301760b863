using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>Which rule of which policy produced an entry: <c>default/allow-frontend ingress[0]</c>.</summary>
public sealed record RuleReference(string? Namespace, string Name, RuleSection Section, int Index) : IComparable<RuleReference>
{
    public static RuleReference Of(NetworkPolicy policy, RuleSection section, int index) =>
        new(policy.Namespace, policy.Name, section, index);

    // Cluster-wide policies (no namespace) sort first; indexes compare as numbers, so ingress[2] < ingress[10].
    public int CompareTo(RuleReference? other)
    {
        if (other is null) return 1;
        var c = string.CompareOrdinal(Namespace ?? "", other.Namespace ?? "");
        if (c == 0) c = string.CompareOrdinal(Name, other.Name);
        if (c == 0) c = Section.CompareTo(other.Section);
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
        return Namespace is null ? $"{Name} {section}[{Index}]" : $"{Namespace}/{Name} {section}[{Index}]";
    }
}

public enum RuleSection { Ingress, IngressDeny, Egress, EgressDeny }
