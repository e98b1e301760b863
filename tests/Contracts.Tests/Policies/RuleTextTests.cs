using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>
/// The rule texts snapshots, flows and digests carry: one per rule of every policy, a NetworkPolicy's apart from its
/// CiliumNetworkPolicy namesake's, and every text written before NetworkPolicies were told apart still reads as it did.
/// </summary>
public sealed class RuleTextTests
{
    private static readonly RuleText CiliumRule = new(PolicyKind.CiliumNetworkPolicy, "default", "allow-web", null, RuleSection.Ingress, 0);
    private static readonly RuleText ClusterwideRule = new(PolicyKind.CiliumClusterwideNetworkPolicy, null, "allow-web", 1, RuleSection.Egress, 0);
    private static readonly RuleText KubernetesRule = new(PolicyKind.KubernetesNetworkPolicy, "default", "allow-web", null, RuleSection.Ingress, 0);

    public static TheoryData<string, RuleText> Texts => new()
    {
        { "default/allow-web ingress[0]", CiliumRule },
        { "allow-web specs[1].egress[0]", ClusterwideRule },
        { "NetworkPolicy default/allow-web ingress[0]", KubernetesRule },
        { "NetworkPolicy shop/db specs[2].egressDeny[10]", new(PolicyKind.KubernetesNetworkPolicy, "shop", "db", 2, RuleSection.EgressDeny, 10) },
        { "shop/db ingressDeny[3]", new(PolicyKind.CiliumNetworkPolicy, "shop", "db", null, RuleSection.IngressDeny, 3) },
        { "ClusterNetworkPolicy isolate egress[2]", new(PolicyKind.ClusterNetworkPolicy, null, "isolate", null, RuleSection.Egress, 2) },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Each_kind_writes_its_text_and_reads_it_back(string text, RuleText rule)
    {
        Assert.Equal(text, rule.ToString());
        Assert.Equal(rule, RuleText.Parse(text));
    }

    [Fact]
    public void The_policy_part_is_the_policy_reference()
    {
        Assert.Equal("default/allow-web", CiliumRule.Policy);
        Assert.Equal("allow-web", ClusterwideRule.Policy);
        Assert.Equal("NetworkPolicy default/allow-web", KubernetesRule.Policy);
        Assert.Equal(KubernetesRule.Policy, new NetworkPolicy("default", "allow-web", [], PolicyKind.KubernetesNetworkPolicy).Reference);
    }

    [Fact]
    public void A_text_written_before_network_policies_were_told_apart_names_a_cilium_policy() =>
        Assert.Equal(PolicyKind.CiliumNetworkPolicy, RuleText.Parse("default/allow-web ingress[0]").Kind);

    [Fact]
    public void The_rules_of_a_cilium_policy_and_the_network_policy_of_its_name_are_ordered_apart_the_cilium_one_first()
    {
        var ciliumEgress = CiliumRule with { Section = RuleSection.Egress };

        Assert.True(CiliumRule.CompareTo(KubernetesRule) < 0);
        Assert.True(KubernetesRule.CompareTo(CiliumRule) > 0);
        // Kind breaks the tie of namespace and name: every rule of one policy stays together.
        Assert.True(ciliumEgress.CompareTo(KubernetesRule) < 0);
        Assert.True(KubernetesRule.CompareTo(KubernetesRule with { Namespace = "other" }) < 0);
        Assert.Equal(0, KubernetesRule.CompareTo(RuleText.Parse(KubernetesRule.ToString())));
    }

    [Fact]
    public void Cluster_wide_rules_come_first_and_indexes_compare_as_numbers()
    {
        Assert.True(ClusterwideRule.CompareTo(KubernetesRule) < 0);
        Assert.True((CiliumRule with { Index = 2 }).CompareTo(CiliumRule with { Index = 10 }) < 0);
    }

    [Theory]
    [InlineData("default/allow-web")]
    [InlineData("default/allow-web ingress[x]")]
    [InlineData("NetworkPolicy allow-web ingress[0]")]   // a NetworkPolicy is namespaced
    [InlineData("networkpolicy default/allow-web ingress[0]")]
    [InlineData("ClusterNetworkPolicy shop/isolate egress[2]")]   // a ClusterNetworkPolicy is cluster-scoped
    public void Anything_else_is_not_a_rule_text(string text) =>
        Assert.Throws<FormatException>(() => RuleText.Parse(text));
}
