using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

public sealed class PolicyParserTests
{
    private const string AllowFrontend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: allow-frontend
          namespace: shop
        spec:
          description: frontend may call the api
          endpointSelector:
            matchLabels:
              app: api
          ingress:
            - fromEndpoints:
                - matchLabels:
                    k8s:app: frontend
                  matchExpressions:
                    - key: tier
                      operator: In
                      values: [web, edge]
              toPorts:
                - ports:
                    - port: "8080"
                      protocol: TCP
                    - port: 53
                      protocol: UDP
          egressDeny:
            - toPorts:
                - ports:
                    - port: "25"
        """;

    private const string AllowFrontendJson = """
        {
          "apiVersion": "cilium.io/v2",
          "kind": "CiliumNetworkPolicy",
          "metadata": { "name": "allow-frontend", "namespace": "shop" },
          "spec": {
            "description": "frontend may call the api",
            "endpointSelector": { "matchLabels": { "app": "api" } },
            "ingress": [ {
              "fromEndpoints": [ {
                "matchLabels": { "k8s:app": "frontend" },
                "matchExpressions": [ { "key": "tier", "operator": "In", "values": ["web", "edge"] } ]
              } ],
              "toPorts": [ { "ports": [ { "port": "8080", "protocol": "TCP" }, { "port": 53, "protocol": "UDP" } ] } ]
            } ],
            "egressDeny": [ { "toPorts": [ { "ports": [ { "port": "25" } ] } ] } ]
          }
        }
        """;

    private static NetworkPolicy ParseOk(string text, string? defaultNamespace = null)
    {
        var result = PolicyParser.Parse(text, defaultNamespace);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        Assert.Empty(result.Errors);
        return result.Policy;
    }

    /// <summary>A namespaced policy document around a spec body (indented by the caller as under "spec:").</summary>
    private static string WithSpec(string spec) => $"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: p
        spec:
        {spec}
        """;

    [Fact]
    public void A_full_document_parses_into_the_policy_it_describes()
    {
        var policy = ParseOk(AllowFrontend);

        Assert.Equal("shop", policy.Namespace);
        Assert.Equal("allow-frontend", policy.Name);
        Assert.Equal("frontend may call the api", policy.Spec.Description);
        Assert.Equal("any:app=api", policy.Spec.EndpointSelector.ToString());
        var rule = Assert.Single(policy.Spec.Ingress);
        Assert.Equal("k8s:app=frontend, any:tier in (edge,web)", Assert.IsType<PeerSelector.Endpoints>(Assert.Single(rule.Peers!)).Selector.ToString());
        Assert.Equal([PortProtocol.Tcp(8080), PortProtocol.Udp(53)], rule.Ports);
        Assert.Empty(policy.Spec.IngressDeny);
        Assert.Empty(policy.Spec.Egress);
        var deny = Assert.Single(policy.Spec.EgressDeny);
        Assert.Null(deny.Peers);
        Assert.Equal([new PortProtocol(25, Protocol.Any)], deny.Ports);
        Assert.Equal(PolicyKind.CiliumNetworkPolicy, policy.Kind);
    }

    [Fact]
    public void Json_and_yaml_of_one_policy_give_the_same_result() =>
        Assert.Equal(PolicyJson.Serialize(ParseOk(AllowFrontend)), PolicyJson.Serialize(ParseOk(AllowFrontendJson)));

    [Fact]
    public void Json_and_yaml_give_the_same_errors()
    {
        var yaml = PolicyParser.Parse(AllowFrontend.Replace("\"8080\"", "\"80/x\"").Replace("operator: In", "operator: Is"));
        var json = PolicyParser.Parse(AllowFrontendJson.Replace("\"8080\"", "\"80/x\"").Replace("\"operator\": \"In\"", "\"operator\": \"Is\""));
        Assert.Equal(2, yaml.Errors.Count);
        Assert.Equal(yaml.Errors, json.Errors);
    }

    [Fact]
    public void An_ingress_rule_without_peers_or_ports_is_kept_and_allows_nothing()
    {
        var policy = ParseOk(WithSpec("""
              endpointSelector: {}
              ingress: [{}]
            """));
        var rule = Assert.Single(policy.Spec.Ingress);
        Assert.True(rule.AllowsNothing);
        Assert.True(policy.Spec.HasIngress);
        Assert.False(policy.Spec.HasEgress);
    }

    [Fact]
    public void A_rule_with_peers_only_allows_any_port()
    {
        var policy = ParseOk(WithSpec("""
              endpointSelector: {}
              egress:
                - toEndpoints: [{matchLabels: {app: db}}]
            """));
        var rule = Assert.Single(policy.Spec.Egress);
        Assert.Single(rule.Peers!);
        Assert.Empty(rule.Ports);
    }

    [Theory]
    [InlineData("\"0\"", 0)]
    [InlineData("0", 0)]
    [InlineData("65535", 65535)]
    [InlineData("\"443\"", 443)]
    [InlineData("null", 0)]
    public void A_port_is_a_number_or_a_numeric_string_and_zero_means_every_port(string written, int expected)
    {
        var policy = ParseOk(WithSpec($$"""
              endpointSelector: {}
              ingress:
                - toPorts: [{ports: [{port: {{written}}, protocol: SCTP}]}]
            """));
        Assert.Equal(new PortProtocol((ushort)expected, Protocol.Sctp), Assert.Single(Assert.Single(policy.Spec.Ingress).Ports));
    }

    [Fact]
    public void The_default_namespace_applies_when_the_document_names_none()
    {
        Assert.Equal("team-a", ParseOk(WithSpec("  endpointSelector: {}"), "team-a").Namespace);
        Assert.Equal(PolicyParser.FallbackNamespace, ParseOk(WithSpec("  endpointSelector: {}")).Namespace);
    }

    [Fact]
    public void A_clusterwide_policy_has_no_namespace()
    {
        var policy = ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: lock-down}
            spec: {endpointSelector: {}, ingress: [{}]}
            """, "ignored");
        Assert.Null(policy.Namespace);
        Assert.Equal("lock-down", policy.Reference);
    }

    [Fact]
    public void Metadata_written_by_kubernetes_is_accepted_and_ignored() =>
        ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata:
              name: p
              namespace: shop
              labels: {owner: team-a}
              annotations: {note: x}
              uid: 9c1d
              resourceVersion: "12"
              generation: 1
            spec: {endpointSelector: {}}
            status: {}
            """);

    public static TheoryData<string, string, string, string> Refusals => new()
    {
        { "apiVersion of another kind", "apiVersion: networking.k8s.io/v1\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec: {endpointSelector: {}}",
            "apiVersion", "\"networking.k8s.io/v1\" is not the apiVersion of a CiliumNetworkPolicy (expected cilium.io/v2)" },
        { "Kubernetes kind under the Cilium apiVersion", "apiVersion: cilium.io/v2\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}",
            "apiVersion", "\"cilium.io/v2\" is not the apiVersion of a NetworkPolicy (expected networking.k8s.io/v1)" },
        { "unknown apiVersion", "apiVersion: cilium.io/v1\nkind: Policy\nmetadata: {name: p}",
            "apiVersion", "\"cilium.io/v1\" is not supported (expected cilium.io/v2, networking.k8s.io/v1 or policy.networking.k8s.io/v1alpha2)" },
        { "wrong kind", "apiVersion: cilium.io/v2\nkind: CiliumPolicy\nmetadata: {name: p}\nspec: {endpointSelector: {}}",
            "kind", "\"CiliumPolicy\" is not a supported kind (expected CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy or ClusterNetworkPolicy)" },
        { "missing kind", "apiVersion: cilium.io/v2\nmetadata: {name: p}\nspec: {endpointSelector: {}}",
            "kind", "is required" },
        { "missing name", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {namespace: shop}\nspec: {endpointSelector: {}}",
            "metadata.name", "is required" },
        { "bad name", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: Allow/All}\nspec: {endpointSelector: {}}",
            "metadata.name", $"\"Allow/All\" is not a DNS subdomain: it has characters other than lowercase letters, digits, '-' and '.' (expected {KubernetesNames.DnsSubdomainExpected})" },
        { "bad namespace", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: my.ns}\nspec: {endpointSelector: {}}",
            "metadata.namespace", $"\"my.ns\" is not a DNS label: it has characters other than lowercase letters, digits and '-' (expected {KubernetesNames.DnsLabelExpected})" },
        { "namespace on a clusterwide policy", "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec: {endpointSelector: {}}",
            "metadata.namespace", "a CiliumClusterwideNetworkPolicy has no namespace" },
        { "missing spec", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}",
            "spec", "is required (or specs, a list of rule sets)" },
        { "unknown top-level field", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspec: {endpointSelector: {}}\nspecz: {}",
            "specz", "unknown field (expected apiVersion, kind, metadata, spec, specs, status)" },
        { "missing endpointSelector", WithSpec("  ingress: [{}]"),
            "spec.endpointSelector", "is required (use {} to select every endpoint)" },
        { "misspelled spec field", WithSpec("  endpointSelector: {}\n  ingres: [{}]"),
            "spec.ingres", "unknown field (expected endpointSelector, ingress, ingressDeny, egress, egressDeny, enableDefaultDeny, labels, description)" },
        { "unknown selector field", WithSpec("  endpointSelector: {matchLabel: {app: web}}"),
            "spec.endpointSelector.matchLabel", "unknown field (expected matchLabels, matchExpressions)" },
        { "bad operator", WithSpec("  endpointSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}"),
            "spec.endpointSelector.matchExpressions[0].operator", "\"Equals\" is not an operator (expected In, NotIn, Exists or DoesNotExist)" },
        { "In without values", WithSpec("  endpointSelector: {matchExpressions: [{key: app, operator: In}]}"),
            "spec.endpointSelector.matchExpressions[0].values", "In needs at least one value" },
        { "Exists with values", WithSpec("  endpointSelector: {matchExpressions: [{key: app, operator: Exists, values: [x]}]}"),
            "spec.endpointSelector.matchExpressions[0].values", "Exists takes no values" },
        { "expression without key", WithSpec("  endpointSelector: {matchExpressions: [{operator: Exists}]}"),
            "spec.endpointSelector.matchExpressions[0].key", "is required" },
        { "bad label key", WithSpec("  endpointSelector: {matchLabels: {'k8s:': web}}"),
            "spec.endpointSelector.matchLabels[\"k8s:\"]", $"\"k8s:\" is not a label key: it is empty (expected {KubernetesNames.LabelKeyExpected})" },
        { "bad label value", WithSpec("  endpointSelector: {matchLabels: {app: 'a b'}}"),
            "spec.endpointSelector.matchLabels[\"app\"]",
            $"\"a b\" is not a label value: it has characters other than letters, digits, '-', '_' and '.' (expected {KubernetesNames.LabelValueExpected})" },
        { "neither a number nor a name", WithSpec("  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: \"80/tcp\"}]}]}]"),
            "spec.ingress[0].toPorts[0].ports[0].port",
            "\"80/tcp\" is neither a port number (1-65535) nor a port name: as a name it has characters other than lowercase letters, digits and '-' (expected " + PortName.Expected + ")" },
        { "port out of range", WithSpec("  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: 70000}]}]}]"),
            "spec.egress[0].toPorts[0].ports[0].port", "\"70000\" is not a port number (1-65535)" },
        { "named port with endPort", WithSpec("  endpointSelector: {}\n  ingress: [{}, {toPorts: [{ports: [{port: http, endPort: 90}]}]}]"),
            "spec.ingress[1].toPorts[0].ports[0].endPort", "cannot be used with a named port (port is \"http\"; a range needs a numeric port, as in Kubernetes)" },
        { "uppercase port name", WithSpec("  endpointSelector: {}\n  egressDeny: [{toPorts: [{ports: [{port: HTTP}]}]}]"),
            "spec.egressDeny[0].toPorts[0].ports[0].port",
            "\"HTTP\" is neither a port number (1-65535) nor a port name: as a name it has characters other than lowercase letters, digits and '-' (expected " + PortName.Expected + ")" },
        { "bad protocol", WithSpec("  endpointSelector: {}\n  ingressDeny: [{toPorts: [{ports: [{port: 80, protocol: HTTP}]}]}]"),
            "spec.ingressDeny[0].toPorts[0].ports[0].protocol", "\"HTTP\" is not a protocol (expected TCP, UDP, SCTP or ANY)" },
        { "lowercase protocol", WithSpec("  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, protocol: tcp}]}]}]"),
            "spec.ingress[0].toPorts[0].ports[0].protocol", "\"tcp\" is not a protocol (expected TCP, UDP, SCTP or ANY)" },
        { "toPorts without ports", WithSpec("  endpointSelector: {}\n  ingress: [{toPorts: [{}]}]"),
            "spec.ingress[0].toPorts[0].ports", "is required" },
        { "toEndpoints in an ingress rule", WithSpec("  endpointSelector: {}\n  ingress: [{toEndpoints: [{}]}]"),
            "spec.ingress[0].toEndpoints", "is not a field of this rule (it takes fromEndpoints)" },
        { "unknown rule field", WithSpec("  endpointSelector: {}\n  egress: [{toPod: [{}]}]"),
            "spec.egress[0].toPod", "unknown field (expected toEndpoints, toRequires, toEntities, toCIDR, toCIDRSet, toFQDNs, toPorts)" },
        { "unsupported L7 protocol", WithSpec("  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80}], rules: {kafka: [{}]}}]}]"),
            "spec.ingress[0].toPorts[0].rules.kafka", "is not supported yet; Mesh refuses the policy rather than enforce part of it" },
        { "peers that are not a list", WithSpec("  endpointSelector: {}\n  ingress: [{fromEndpoints: {app: web}}]"),
            "spec.ingress[0].fromEndpoints", "expected a list, got a mapping" },
        { "selector that is a string", WithSpec("  endpointSelector: app=web"),
            "spec.endpointSelector", "expected a mapping, got \"app=web\"" },
        { "empty document", "", "", "the document is empty" },
        { "two documents", "a: 1\n---\nb: 2", "", "expected one policy document, got 2" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void An_invalid_document_is_refused_with_the_path_of_the_field(string name, string document, string path, string message)
    {
        var result = PolicyParser.Parse(document);
        Assert.False(result.Ok, name);
        Assert.Null(result.Policy);
        Assert.Contains(new FieldError(path, message), result.Errors);
    }

    [Fact]
    public void Every_error_of_a_document_is_reported_not_just_the_first()
    {
        var result = PolicyParser.Parse("""
            apiVersion: cilium.io/v1
            kind: CiliumNetworkPolicy
            metadata: {name: p}
            spec:
              endpointSelector: {matchExpressions: [{key: app, operator: Has}]}
              ingress:
                - toPorts: [{ports: [{port: "80/x", protocol: TCP}, {port: 443, protocol: QUIC}]}]
              egress:
                - toCIDR: [10.0.0.0/88]
            """);
        Assert.Equal(
        [
            "apiVersion",
            "spec.endpointSelector.matchExpressions[0].operator",
            "spec.ingress[0].toPorts[0].ports[0].port",
            "spec.ingress[0].toPorts[0].ports[1].protocol",
            "spec.egress[0].toCIDR[0]",
        ], result.Errors.Select(e => e.Path));
    }

    [Fact]
    public void Malformed_yaml_is_refused_with_its_position()
    {
        var result = PolicyParser.Parse("apiVersion: cilium.io/v2\nkind: [unclosed\n");
        var error = Assert.Single(result.Errors);
        Assert.Equal("", error.Path);
        Assert.StartsWith("not valid YAML or JSON (line ", error.Message);
    }

    [Fact]
    public void A_document_ending_inside_an_unclosed_flow_mapping_is_refused_with_a_line_not_thrown()
    {
        var result = PolicyParser.Parse("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: broken\nspec: {}\n", firstLine: 7);
        var error = Assert.Single(result.Errors);
        Assert.Equal("not valid YAML or JSON (line 10): the document ends inside an unclosed '{' or '['", error.Message);
    }

    [Fact]
    public void A_syntax_error_names_the_line_of_the_file_the_document_starts_in()
    {
        var result = PolicyParser.Parse("apiVersion: cilium.io/v2\nkind: [unclosed\n", firstLine: 20);   // found at the end: its line 3
        Assert.StartsWith("not valid YAML or JSON (line 22,", Assert.Single(result.Errors).Message);
    }

    [Fact]
    public void Malformed_json_is_refused()
    {
        var result = PolicyParser.Parse("{\"apiVersion\": \"cilium.io/v2\", \"kind\": ");
        Assert.False(result.Ok);
        Assert.StartsWith("not valid YAML or JSON", Assert.Single(result.Errors).Message);
    }

    [Fact]
    public void An_error_prints_as_path_colon_message() =>
        Assert.Equal("spec.ingress[0].toPorts[0].ports[0].port: \"80x\" is not a port number (1-65535)",
            new FieldError("spec.ingress[0].toPorts[0].ports[0].port", "\"80x\" is not a port number (1-65535)").ToString());

    [Fact]
    public void Parsed_selectors_match_pod_labels()
    {
        var policy = ParseOk(AllowFrontend);
        var frontend = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "frontend", ["tier"] = "web" }, new Dictionary<string, string>());
        var peer = policy.Scope(Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[0].Peers!)).Selector);
        Assert.True(peer.Matches(frontend));
        Assert.False(peer.Matches(LabelSet.ForPod("other", new Dictionary<string, string> { ["app"] = "frontend", ["tier"] = "web" }, new Dictionary<string, string>())));
    }
}
