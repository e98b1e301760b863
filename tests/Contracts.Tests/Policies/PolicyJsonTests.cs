using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

public sealed class PolicyJsonTests
{
    private static readonly NetworkPolicy Sample = new("shop", "allow-frontend", new PolicySpec(
        LabelSelector.Of(new Dictionary<string, string> { ["app"] = "api" }),
        Ingress:
        [
            new PolicyRule([LabelSelector.Of(new Dictionary<string, string> { ["k8s:app"] = "frontend" },
                new SelectorRequirement(SelectorKey.Parse("tier"), SelectorOperator.NotIn, ["debug"]))], [PortProtocol.Tcp(8080)]),
            new PolicyRule(null, []),
        ],
        IngressDeny: [new PolicyRule([LabelSelector.All], [new PortProtocol(0, Protocol.Udp)])],
        Egress: [],
        EgressDeny: [new PolicyRule(null, [new PortProtocol(25, Protocol.Any)])],
        Description: "frontend → api"));

    [Fact]
    public void A_policy_survives_a_round_trip_through_its_canonical_json()
    {
        var json = PolicyJson.Serialize(Sample);
        var back = PolicyJson.Deserialize(json);

        Assert.Equal(json, PolicyJson.Serialize(back));
        Assert.Equal(PolicyJson.Hash(Sample), PolicyJson.Hash(back));
        Assert.Equal(Sample.Namespace, back.Namespace);
        Assert.Equal(Sample.Spec.EndpointSelector, back.Spec.EndpointSelector);
        Assert.Equal(Sample.Spec.Ingress[0].Peers!, back.Spec.Ingress[0].Peers!);
        Assert.Null(back.Spec.Ingress[1].Peers);
        Assert.Equal(Sample.Spec.EgressDeny[0].Ports, back.Spec.EgressDeny[0].Ports);
        Assert.Equal(Sample.Kind, back.Kind);
        Assert.Equal("frontend → api", back.Spec.Description);
    }

    [Fact]
    public void An_ip_block_keeps_selecting_endpoints_through_its_json_and_a_cidr_written_without_the_field_does_not()
    {
        var ipBlock = new NetworkPolicy("shop", "egress", new PolicySpec(LabelSelector.All, [], [],
            [new PolicyRule([new PeerSelector.Cidr(CidrPrefix.Parse("10.0.0.0/8"), [CidrPrefix.Parse("10.1.0.0/16")], SelectsEndpoints: true)], [], [])],
            [], null)) with { Kind = PolicyKind.KubernetesNetworkPolicy };
        var json = PolicyJson.Serialize(ipBlock);
        Assert.Contains("""{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"],"selectsEndpoints":true}""", json, StringComparison.Ordinal);
        Assert.True(Cidr(PolicyJson.Deserialize(json)).SelectsEndpoints);

        // A Cilium CIDR is written as before the field existed (its hash is unchanged), and such JSON reads as one.
        var cilium = ipBlock with { Specs = [ipBlock.Spec with { Egress = [new PolicyRule([Cidr(ipBlock) with { SelectsEndpoints = false }], [], [])] }] };
        var written = PolicyJson.Serialize(cilium);
        Assert.Contains("""{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}""", written, StringComparison.Ordinal);
        Assert.False(Cidr(PolicyJson.Deserialize(written)).SelectsEndpoints);

        static PeerSelector.Cidr Cidr(NetworkPolicy policy) => Assert.IsType<PeerSelector.Cidr>(Assert.Single(Assert.Single(policy.Spec.Egress).Peers!));
    }

    [Fact]
    public void A_clusterwide_policy_round_trips_without_a_namespace()
    {
        var clusterwide = Sample with { Namespace = null };
        Assert.Null(PolicyJson.Deserialize(PolicyJson.Serialize(clusterwide)).Namespace);
    }

    [Fact]
    public void The_canonical_form_has_a_fixed_shape() =>
        Assert.Equal(
            """{"namespace":"a","name":"p","kind":"CiliumNetworkPolicy","specs":[{"endpointSelector":{"matchLabels":{"any:app":"web"},"matchExpressions":[]},""" +
            """ "ingress":[{"peers":null,"requires":[],"toPorts":[{"ports":[{"port":80,"protocol":"TCP","endPort":0}],"rules":null}]}],""".TrimStart() +
            """ "ingressDeny":[],"egress":[],"egressDeny":[],"enableDefaultDeny":{"ingress":null,"egress":null},"labels":[],"description":null}]}""".TrimStart(),
            PolicyJson.Serialize(new NetworkPolicy("a", "p", new PolicySpec(
                LabelSelector.Of(new Dictionary<string, string> { ["app"] = "web" }),
                [new PolicyRule(null, [PortProtocol.Tcp(80)])], [], [], [], null))));

    [Fact]
    public void The_hash_is_the_same_however_a_selector_was_written()
    {
        var a = PolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: p, namespace: a}
            spec: {endpointSelector: {matchLabels: {app: web, k8s:tier: front}}}
            """).Policy!;
        var b = PolicyParser.Parse("""
            {"kind": "CiliumNetworkPolicy", "apiVersion": "cilium.io/v2", "metadata": {"namespace": "a", "name": "p"},
             "spec": {"endpointSelector": {"matchLabels": {"k8s:tier": "front", "any:app": "web"}}}}
            """).Policy!;
        Assert.Equal(PolicyJson.Hash(a), PolicyJson.Hash(b));
        Assert.Matches("^[0-9a-f]{64}$", PolicyJson.Hash(a));
    }

    [Fact]
    public void A_different_policy_has_a_different_hash() =>
        Assert.NotEqual(PolicyJson.Hash(Sample), PolicyJson.Hash(Sample with { Name = "other" }));
}
