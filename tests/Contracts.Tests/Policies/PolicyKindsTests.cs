using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>The kinds a request may name (?kind=, --kind), and the names documents give them.</summary>
public sealed class PolicyKindsTests
{
    [Theory]
    [InlineData("CiliumNetworkPolicy", PolicyKind.CiliumNetworkPolicy)]
    [InlineData("ciliumnetworkpolicy", PolicyKind.CiliumNetworkPolicy)]
    [InlineData("cnp", PolicyKind.CiliumNetworkPolicy)]
    [InlineData("NetworkPolicy", PolicyKind.KubernetesNetworkPolicy)]
    [InlineData("networkpolicy", PolicyKind.KubernetesNetworkPolicy)]
    [InlineData("netpol", PolicyKind.KubernetesNetworkPolicy)]
    public void A_namespaced_kind_is_named_as_documents_or_kubectl_name_it_in_any_case(string text, PolicyKind kind)
    {
        Assert.True(PolicyKinds.TryParseNamespaced(text, out var parsed));
        Assert.Equal(kind, parsed);
    }

    [Theory]
    [InlineData("CiliumClusterwideNetworkPolicy")]
    [InlineData("ClusterNetworkPolicy")]
    [InlineData("KubernetesNetworkPolicy")]
    [InlineData("np")]
    [InlineData("")]
    [InlineData(null)]
    public void Anything_else_is_not_a_namespaced_kind(string? text) =>
        Assert.False(PolicyKinds.TryParseNamespaced(text, out _));

    [Theory]
    [InlineData("CiliumClusterwideNetworkPolicy", PolicyKind.CiliumClusterwideNetworkPolicy)]
    [InlineData("ciliumclusterwidenetworkpolicy", PolicyKind.CiliumClusterwideNetworkPolicy)]
    [InlineData("ccnp", PolicyKind.CiliumClusterwideNetworkPolicy)]
    [InlineData("ClusterNetworkPolicy", PolicyKind.ClusterNetworkPolicy)]
    [InlineData("clusternetworkpolicy", PolicyKind.ClusterNetworkPolicy)]
    [InlineData(" CLUSTERNETWORKPOLICY ", PolicyKind.ClusterNetworkPolicy)]
    public void A_clusterwide_kind_is_named_as_documents_or_kubectl_name_it_in_any_case(string text, PolicyKind kind)
    {
        Assert.True(PolicyKinds.TryParseClusterwide(text, out var parsed));
        Assert.Equal(kind, parsed);
        Assert.True(PolicyKinds.TryParse(text, out var any));
        Assert.Equal(kind, any);
    }

    [Theory]
    [InlineData("CiliumNetworkPolicy")]
    [InlineData("NetworkPolicy")]
    [InlineData("cnp")]   // CiliumNetworkPolicy's: ClusterNetworkPolicy has no short name here
    [InlineData("anp")]
    [InlineData("AdminNetworkPolicy")]
    [InlineData("")]
    [InlineData(null)]
    public void Anything_else_is_not_a_clusterwide_kind(string? text) =>
        Assert.False(PolicyKinds.TryParseClusterwide(text, out _));

    [Theory]
    [InlineData("cnp", PolicyKind.CiliumNetworkPolicy, false)]
    [InlineData("netpol", PolicyKind.KubernetesNetworkPolicy, false)]
    [InlineData("ccnp", PolicyKind.CiliumClusterwideNetworkPolicy, true)]
    [InlineData("ClusterNetworkPolicy", PolicyKind.ClusterNetworkPolicy, true)]
    public void Any_kind_is_one_of_the_four_and_two_of_them_have_no_namespace(string text, PolicyKind kind, bool clusterwide)
    {
        Assert.True(PolicyKinds.TryParse(text, out var parsed));
        Assert.Equal(kind, parsed);
        Assert.Equal(clusterwide, PolicyKinds.IsClusterwide(parsed));
        Assert.False(PolicyKinds.TryParse("AdminNetworkPolicy", out _));
    }

    [Fact]
    public void The_choices_name_every_kind_they_accept()
    {
        Assert.Contains("ClusterNetworkPolicy", PolicyKinds.Choices.Replace("CiliumClusterwideNetworkPolicy", "", StringComparison.Ordinal));
        Assert.Contains("ccnp", PolicyKinds.ClusterwideChoices);
        Assert.Contains("ClusterNetworkPolicy", PolicyKinds.ClusterwideChoices.Replace("CiliumClusterwideNetworkPolicy", "", StringComparison.Ordinal));
    }

    [Fact]
    public void A_kind_is_shown_as_documents_write_it()
    {
        Assert.Equal("NetworkPolicy", PolicyKinds.DocumentKind(PolicyKind.KubernetesNetworkPolicy));
        Assert.Equal("NetworkPolicy default/web", new NetworkPolicy("default", "web", [], PolicyKind.KubernetesNetworkPolicy).KindAndName);
        Assert.Equal("CiliumClusterwideNetworkPolicy web", new NetworkPolicy(null, "web", [], PolicyKind.CiliumClusterwideNetworkPolicy).KindAndName);
        Assert.Equal("ClusterNetworkPolicy", PolicyKinds.DocumentKind(PolicyKind.ClusterNetworkPolicy));
        Assert.Equal("ClusterNetworkPolicy web", new NetworkPolicy(null, "web", [], PolicyKind.ClusterNetworkPolicy).KindAndName);
    }
}
