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
    [InlineData("KubernetesNetworkPolicy")]
    [InlineData("np")]
    [InlineData("")]
    [InlineData(null)]
    public void Anything_else_is_not_a_namespaced_kind(string? text) =>
        Assert.False(PolicyKinds.TryParseNamespaced(text, out _));

    [Fact]
    public void A_kind_is_shown_as_documents_write_it()
    {
        Assert.Equal("NetworkPolicy", PolicyKinds.DocumentKind(PolicyKind.KubernetesNetworkPolicy));
        Assert.Equal("NetworkPolicy default/web", new NetworkPolicy("default", "web", [], PolicyKind.KubernetesNetworkPolicy).KindAndName);
        Assert.Equal("CiliumClusterwideNetworkPolicy web", new NetworkPolicy(null, "web", [], PolicyKind.CiliumClusterwideNetworkPolicy).KindAndName);
    }
}
