using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>Kubernetes NetworkPolicy documents and the Cilium-model policy each one translates into.</summary>
public sealed class KubernetesNetworkPolicyTests
{
    private static string Document(string spec) => $"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {"{"}name: np, namespace: x{"}"}
        spec:
        {spec}
        """;

    private static NetworkPolicy ParseOk(string spec)
    {
        var result = PolicyParser.Parse(Document(spec));
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Equal(PolicyKind.KubernetesNetworkPolicy, result.Policy.Kind);
        return result.Policy;
    }

    private static PolicySpec Spec(string spec) => Assert.Single(ParseOk(spec).Specs);

    private static readonly PeerSelector AllPeers = new PeerSelector.EntityPeer(Entity.All);

    [Fact]
    public void Absent_ingress_with_policy_type_ingress_denies_all_ingress()
    {
        var spec = Spec("  podSelector: {}\n  policyTypes: [Ingress]");
        Assert.True(spec.EnforcesIngress);
        Assert.Empty(spec.Ingress);
        Assert.False(spec.EnforcesEgress);
    }

    [Fact]
    public void Absent_policy_types_mean_ingress_only_when_there_are_no_egress_rules()
    {
        var spec = Spec("  podSelector: {}");
        Assert.True(spec.EnforcesIngress);
        Assert.False(spec.EnforcesEgress);
    }

    [Fact]
    public void Absent_policy_types_include_egress_when_egress_rules_exist()
    {
        var spec = Spec("  podSelector: {}\n  egress: [{}]");
        Assert.True(spec.EnforcesIngress);
        Assert.True(spec.EnforcesEgress);
    }

    [Fact]
    public void An_empty_ingress_rule_allows_every_peer_on_every_port()
    {
        var rule = Assert.Single(Spec("  podSelector: {}\n  ingress: [{}]").Ingress);
        Assert.Equal([AllPeers], rule.Peers!);
        Assert.Empty(rule.ToPorts);
        Assert.False(rule.AllowsNothing);
    }

    [Fact]
    public void An_empty_from_list_is_every_peer_like_an_absent_one()
    {
        var rule = Assert.Single(Spec("  podSelector: {}\n  ingress: [{from: [], ports: [{port: 80}]}]").Ingress);
        Assert.Equal([AllPeers], rule.Peers!);
        Assert.Equal([PortProtocol.Tcp(80)], rule.Ports);
    }

    [Fact]
    public void Deny_all_egress_is_enforced_egress_without_rules()
    {
        var spec = Spec("  podSelector: {}\n  policyTypes: [Egress]");
        Assert.False(spec.EnforcesIngress);
        Assert.True(spec.EnforcesEgress);
        Assert.Empty(spec.Egress);
    }

    [Fact]
    public void Rules_of_a_direction_not_in_policy_types_are_ignored()
    {
        var spec = Spec("  podSelector: {}\n  policyTypes: [Egress]\n  ingress: [{}]");
        Assert.Empty(spec.Ingress);
        Assert.False(spec.EnforcesIngress);
    }

    [Fact]
    public void A_pod_selector_peer_is_scoped_to_the_policy_namespace_with_kubernetes_keys()
    {
        var policy = ParseOk("  podSelector: {matchLabels: {pod: a}}\n  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]");
        Assert.Equal("k8s:io.kubernetes.pod.namespace=x, k8s:pod=a", policy.EffectiveEndpointSelector(policy.Spec).ToString());
        var peer = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[0].Peers!));
        Assert.Equal("k8s:io.kubernetes.pod.namespace=x, k8s:pod=b", policy.Scope(peer.Selector).ToString());
    }

    [Fact]
    public void A_namespace_selector_peer_matches_namespace_labels_in_any_namespace()
    {
        var policy = ParseOk("  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]}]");
        var peer = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[0].Peers!));
        var scoped = policy.Scope(peer.Selector);
        Assert.Equal("k8s:io.cilium.k8s.namespace.labels.ns=y, k8s:pod=b, k8s:io.kubernetes.pod.namespace", scoped.ToString());
        Assert.True(scoped.Matches(Pod("y", "b")));
        Assert.False(scoped.Matches(Pod("x", "b")));
        Assert.False(scoped.Matches(Pod("y", "a")));
    }

    [Fact]
    public void An_empty_namespace_selector_matches_pods_of_every_namespace_but_not_host_or_world()
    {
        var policy = ParseOk("  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {}}]}]");
        var peer = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[0].Peers!));
        var scoped = policy.Scope(peer.Selector);
        Assert.True(scoped.Matches(Pod("z", "c")));
        Assert.False(scoped.Matches(LabelSet.From(new Label("reserved", "host", ""))));
    }

    [Fact]
    public void An_ip_block_becomes_a_cidr_with_its_excepts_that_selects_the_endpoints_it_covers()
    {
        var rule = Assert.Single(Spec("  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{to: [{ipBlock: {cidr: 172.17.0.0/16, except: [172.17.1.0/24]}}]}]").Egress);
        Assert.Equal(PolicyJson.Serialize(new NetworkPolicy(null, "n", new PolicySpec(LabelSelector.All, [], [], [rule], [], null))),
            PolicyJson.Serialize(new NetworkPolicy(null, "n", new PolicySpec(LabelSelector.All, [], [], [new PolicyRule(
                [new PeerSelector.Cidr(CidrPrefix.Parse("172.17.0.0/16"), [CidrPrefix.Parse("172.17.1.0/24")], SelectsEndpoints: true)], [], [])], [], null))));
    }

    [Fact]
    public void Ports_default_to_tcp_and_carry_end_port()
    {
        var rule = Assert.Single(Spec("  podSelector: {}\n  ingress: [{ports: [{port: 80}, {protocol: UDP, port: 53}, {port: 32000, endPort: 32768}, {protocol: SCTP}]}]").Ingress);
        Assert.Equal([PortProtocol.Tcp(80), PortProtocol.Udp(53), new PortProtocol(32000, Protocol.Tcp, 32768), new PortProtocol(0, Protocol.Sctp)], rule.Ports);
    }

    [Fact]
    public void A_kubernetes_policy_goes_through_the_same_parser_entry_and_canonical_json()
    {
        var policy = ParseOk("  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{podSelector: {}}], ports: [{port: 5432}]}]");
        var back = PolicyJson.Deserialize(PolicyJson.Serialize(policy));
        Assert.Equal(PolicyKind.KubernetesNetworkPolicy, back.Kind);
        Assert.Equal(PolicyJson.Serialize(policy), PolicyJson.Serialize(back));
        Assert.Equal("x", back.Namespace);
    }

    public static TheoryData<string, string, string, string> Refusals => new()
    {
        { "endPort with a named port", "  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}]", "spec.ingress[0].ports[0].endPort",
            "cannot be used with a named port (port is \"http\"; a range needs a numeric port, as in Kubernetes)" },
        { "port 0", "  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]", "spec.ingress[0].ports[0].port", "\"0\" is not a port number (1-65535)" },
        { "port name too long", "  podSelector: {}\n  ingress: [{ports: [{port: abcdefghijklmnop}]}]", "spec.ingress[0].ports[0].port",
            NotAName("abcdefghijklmnop", "is longer than 15 characters") },
        { "uppercase port name", "  podSelector: {}\n  ingress: [{ports: [{port: Http}]}]", "spec.ingress[0].ports[0].port",
            NotAName("Http", "has characters other than lowercase letters, digits and '-'") },
        { "underscore in a port name", "  podSelector: {}\n  egress: [{ports: [{port: my_port}]}]", "spec.egress[0].ports[0].port",
            NotAName("my_port", "has characters other than lowercase letters, digits and '-'") },
        { "port name without a letter", "  podSelector: {}\n  ingress: [{}, {ports: [{port: 80-81}]}]", "spec.ingress[1].ports[0].port",
            NotAName("80-81", "has no letter") },
        { "port name starting with '-'", "  podSelector: {}\n  ingress: [{ports: [{port: -http}]}]", "spec.ingress[0].ports[0].port",
            NotAName("-http", "starts or ends with '-'") },
        { "port name ending with '-'", "  podSelector: {}\n  ingress: [{ports: [{port: http-}]}]", "spec.ingress[0].ports[0].port",
            NotAName("http-", "starts or ends with '-'") },
        { "port name with '--'", "  podSelector: {}\n  ingress: [{ports: [{port: serve--80}]}]", "spec.ingress[0].ports[0].port",
            NotAName("serve--80", "has two '-' in a row") },
        { "endPort below port", "  podSelector: {}\n  ingress: [{ports: [{port: 90, endPort: 80}]}]", "spec.ingress[0].ports[0].endPort",
            "80 is below port 90 (expected port <= endPort)" },
        { "bad protocol", "  podSelector: {}\n  ingress: [{ports: [{protocol: ANY}]}]", "spec.ingress[0].ports[0].protocol",
            "\"ANY\" is not a protocol (expected TCP, UDP or SCTP)" },
        { "empty peer", "  podSelector: {}\n  ingress: [{from: [{}]}]", "spec.ingress[0].from[0]",
            "is empty (expected podSelector, namespaceSelector or ipBlock)" },
        { "ipBlock with a selector", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]",
            "spec.ingress[0].from[0].ipBlock", "cannot be combined with podSelector or namespaceSelector" },
        { "except outside the block", "  podSelector: {}\n  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]",
            "spec.ingress[0].from[0].ipBlock.except[0]", "11.0.0.0/16 is not inside 10.0.0.0/8 (an except must be a smaller part of its CIDR)" },
        { "bad policy type", "  podSelector: {}\n  policyTypes: [Inbound]", "spec.policyTypes[0]",
            "\"Inbound\" is not a policy type (expected Ingress or Egress)" },
        { "missing podSelector", "  policyTypes: [Ingress]", "spec.podSelector", "is required (use {} to select every pod of the namespace)" },
        { "Cilium field in a NetworkPolicy", "  podSelector: {}\n  ingress: [{fromEndpoints: [{}]}]", "spec.ingress[0].fromEndpoints",
            "unknown field (expected from, ports)" },
        { "egress peer field on ingress", "  podSelector: {}\n  ingress: [{to: []}]", "spec.ingress[0].to", "unknown field (expected from, ports)" },
        { "Cilium key syntax", "  podSelector: {matchLabels: {'k8s:app': a}}", "spec.podSelector.matchLabels[\"k8s:app\"]",
            $"\"k8s:app\" is not a label key: it has characters other than letters, digits, '-', '_' and '.' (expected {KubernetesNames.LabelKeyExpected})" },
    };

    private static string NotAName(string text, string problem) =>
        $"\"{text}\" is neither a port number (1-65535) nor a port name: as a name it {problem} (expected {PortName.Expected})";

    [Theory]
    [InlineData("http")]
    [InlineData("serve-80-tcp")]
    [InlineData("a")]
    [InlineData("80x")]
    [InlineData("abcdefghijklmno")]
    [InlineData("h2c-1-2")]
    public void A_port_name_is_read_as_a_named_port_of_the_rule_protocol(string name)
    {
        var rule = Assert.Single(Spec($"  podSelector: {{}}\n  ingress: [{{ports: [{{port: {name}}}, {{port: {name}, protocol: UDP}}]}}]").Ingress);
        Assert.Equal([PortProtocol.Named(name, Protocol.Tcp), PortProtocol.Named(name, Protocol.Udp)], rule.Ports);
    }

    [Fact]
    public void Named_ports_read_the_same_from_yaml_and_json_and_the_name_is_in_the_canonical_form()
    {
        var yaml = ParseOk("  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress, Egress]\n  ingress: [{ports: [{port: serve-80-tcp}]}]\n  egress: [{ports: [{port: dns, protocol: UDP}]}]");
        var json = PolicyParser.Parse("""
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "x"},
             "spec": {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Ingress", "Egress"],
                      "ingress": [{"ports": [{"port": "serve-80-tcp"}]}], "egress": [{"ports": [{"port": "dns", "protocol": "UDP"}]}]}}
            """);
        Assert.True(json.Ok, string.Join("\n", json.Errors));
        var canonical = PolicyJson.Serialize(yaml);
        Assert.Equal(canonical, PolicyJson.Serialize(json.Policy));
        Assert.Contains("""{"port":0,"protocol":"TCP","endPort":0,"name":"serve-80-tcp"}""", canonical);
        Assert.Contains("""{"port":0,"protocol":"UDP","endPort":0,"name":"dns"}""", canonical);
        Assert.Equal(canonical, PolicyJson.Serialize(PolicyJson.Deserialize(canonical)));
        Assert.Equal(PolicyJson.Hash(yaml), PolicyJson.Hash(PolicyJson.Deserialize(canonical)));
    }

    [Fact]
    public void The_name_of_a_port_changes_the_hash_and_numeric_ports_keep_their_canonical_form()
    {
        var http = ParseOk("  podSelector: {}\n  ingress: [{ports: [{port: http}]}]");
        var web = ParseOk("  podSelector: {}\n  ingress: [{ports: [{port: web}]}]");
        var numeric = ParseOk("  podSelector: {}\n  ingress: [{ports: [{port: 80}]}]");
        Assert.NotEqual(PolicyJson.Hash(http), PolicyJson.Hash(web));
        Assert.NotEqual(PolicyJson.Hash(http), PolicyJson.Hash(numeric));
        // Policies stored before names existed hash as they did: a numeric port writes no name.
        Assert.Contains("""{"port":80,"protocol":"TCP","endPort":0}]""", PolicyJson.Serialize(numeric));
    }

    [Theory]
    [MemberData(nameof(Refusals))]
    public void An_invalid_network_policy_is_refused_with_the_path_of_the_field(string name, string spec, string path, string message)
    {
        var result = PolicyParser.Parse(Document(spec));
        Assert.False(result.Ok, name);
        Assert.Contains(new FieldError(path, message), result.Errors);
    }

    private static LabelSet Pod(string ns, string pod) =>
        LabelSet.ForPod(ns, new Dictionary<string, string> { ["pod"] = pod }, new Dictionary<string, string> { ["ns"] = ns });
}
