using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Compilation;

/// <summary>
/// Which rule of which policy produced an entry. Its text and order are <see cref="RuleText"/>'s (the node agent
/// orders by the same type): <c>default/allow-frontend ingress[0]</c>, <c>default/allow-frontend specs[1].ingress[0]</c>
/// for a policy of several rule sets (<paramref name="Spec"/> null = the policy has one), <c>NetworkPolicy default/x
/// ingress[0]</c> for a Kubernetes NetworkPolicy. A reference type, so the entries of one rule share one object.
/// </summary>
public sealed record RuleReference(PolicyKind Kind, string? Namespace, string Name, int? Spec, RuleSection Section, int Index) : IComparable<RuleReference>
{
    // Formatted once: every entry's digest names its rule by text. Derived from the other fields, so equality is unchanged.
    private readonly string _text = new RuleText(Kind, Namespace, Name, Spec, Section, Index).ToString();

    public static RuleReference Of(NetworkPolicy policy, int spec, RuleSection section, int index) =>
        new(policy.Kind, policy.Namespace, policy.Name, policy.Specs.Count > 1 ? spec : null, section, index);

    public RuleText Text => new(Kind, Namespace, Name, Spec, Section, Index);

    public int CompareTo(RuleReference? other)
    {
        if (other is null) return 1;
        return ReferenceEquals(this, other) ? 0 : Text.CompareTo(other.Text);
    }

    /// <summary>The policy's reference (<see cref="NetworkPolicy.Reference"/>): what the compiler keys its policies by.</summary>
    public string Policy => NetworkPolicy.ReferenceOf(Kind, Namespace, Name);

    public override string ToString() => _text;

    /// <summary>Reads back what <see cref="ToString"/> wrote (a snapshot carries rule texts, a delta references).</summary>
    public static RuleReference Parse(string text)
    {
        var t = RuleText.Parse(text);
        return new RuleReference(t.Kind, t.Namespace, t.Name, t.Spec, t.Section, t.Index);
    }
}
