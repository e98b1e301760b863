using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>Audit mode is asked for by an annotation, so the document stays valid Cilium and Kubernetes YAML.</summary>
public sealed class PolicyModeTests
{
    private static string Document(string kind, string apiVersion, string annotations, string spec) => $"""
        apiVersion: {apiVersion}
        kind: {kind}
        metadata:
          name: lockdown
          namespace: shop
        {annotations}
        spec:
        {spec}
        """;

    private const string CiliumSpec = """
          endpointSelector:
            matchLabels:
              app: web
          ingress:
            - {}
        """;

    private static string Cilium(string annotations) => Document(PolicyParser.NamespacedKind, PolicyParser.ApiVersion, annotations, CiliumSpec);

    [Theory]
    [InlineData("", PolicyMode.Enforce)]
    [InlineData("  annotations:\n    team: shop", PolicyMode.Enforce)]
    [InlineData("  annotations:\n    policy.mesh.io/mode: enforce", PolicyMode.Enforce)]
    [InlineData("  annotations:\n    team: shop\n    policy.mesh.io/mode: audit", PolicyMode.Audit)]
    public void The_annotation_sets_the_mode(string annotations, PolicyMode expected)
    {
        var result = PolicyParser.Parse(Cilium(annotations));
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(expected, result.Policy.Mode);
    }

    [Fact]
    public void A_kubernetes_network_policy_can_be_audited_too()
    {
        var result = PolicyParser.Parse(Document(PolicyParser.KubernetesKind, PolicyParser.KubernetesApiVersion,
            "  annotations:\n    policy.mesh.io/mode: audit", "  podSelector: {}\n  policyTypes: [Ingress]"));
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.True(result.Policy.Audited);
    }

    [Fact]
    public void A_mode_it_does_not_know_is_refused_naming_the_annotation()
    {
        var result = PolicyParser.Parse(Cilium("  annotations:\n    policy.mesh.io/mode: dry-run"));
        var error = Assert.Single(result.Errors);
        Assert.Equal("metadata.annotations.policy.mesh.io/mode", error.Path);
        Assert.Contains("expected enforce or audit", error.Message);
    }

    [Fact]
    public void The_mode_survives_its_canonical_json_and_an_enforced_policy_keeps_the_bytes_it_had()
    {
        var enforced = PolicyParser.Parse(Cilium("")).Policy!;
        var audited = PolicyParser.Parse(Cilium("  annotations:\n    policy.mesh.io/mode: audit")).Policy!;
        Assert.DoesNotContain("\"mode\"", PolicyJson.Serialize(enforced));
        Assert.EndsWith(",\"mode\":\"audit\"}", PolicyJson.Serialize(audited));
        Assert.Equal(PolicyMode.Audit, PolicyJson.Deserialize(PolicyJson.Serialize(audited)).Mode);
        Assert.Equal(PolicyMode.Enforce, PolicyJson.Deserialize(PolicyJson.Serialize(enforced)).Mode);
        // Promoting changes the hash, so applying the enforced document is a change in the log.
        Assert.NotEqual(PolicyJson.Hash(enforced), PolicyJson.Hash(audited));
    }
}
