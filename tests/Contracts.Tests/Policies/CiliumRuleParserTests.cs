using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>The Cilium rule language beyond endpoints and plain ports: one row per field, then one per refusal.</summary>
public sealed class CiliumRuleParserTests
{
    private static string WithSpec(string spec) => $"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {"{"}name: p, namespace: shop{"}"}
        spec:
        {spec}
        """;

    private static NetworkPolicy ParseOk(string text)
    {
        var result = PolicyParser.Parse(text);
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        return result.Policy;
    }

    /// <summary>A spec body, and what the policy's canonical JSON must then contain (' for ").</summary>
    public static TheoryData<string, string, string> Accepted => new()
    {
        { "fromEntities", "  endpointSelector: {}\n  ingress: [{fromEntities: [world, host, remote-node, cluster, init, health, unmanaged, kube-apiserver, all]}]",
            @"'peers':[{'entity':'World'},{'entity':'Host'},{'entity':'RemoteNode'},{'entity':'Cluster'},{'entity':'Init'},{'entity':'Health'},{'entity':'Unmanaged'},{'entity':'KubeApiServer'},{'entity':'All'}]" },
        { "toEntities", "  endpointSelector: {}\n  egress: [{toEntities: [kube-apiserver]}]", @"'egress':[{'peers':[{'entity':'KubeApiServer'}]" },
        { "fromCIDR, host bits cleared", "  endpointSelector: {}\n  ingress: [{fromCIDR: [10.1.2.3/8, 192.0.2.1]}]",
            @"'peers':[{'cidr':'10.0.0.0/8','except':[]},{'cidr':'192.0.2.1/32','except':[]}]" },
        { "toCIDRSet with except", "  endpointSelector: {}\n  egress: [{toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}]",
            @"'peers':[{'cidr':'10.0.0.0/8','except':['10.1.0.0/16']}]" },
        { "IPv6 CIDR", "  endpointSelector: {}\n  egress: [{toCIDR: ['2001:db8::/32']}]", @"{'cidr':'2001:db8::/32','except':[]}" },
        { "fromRequires", "  endpointSelector: {}\n  ingress: [{fromRequires: [{matchLabels: {env: prod}}]}]",
            @"'peers':null,'requires':[{'matchLabels':{'any:env':'prod'}" },
        { "toRequires", "  endpointSelector: {}\n  egress: [{toRequires: [{matchLabels: {env: prod}}], toEndpoints: [{}]}]",
            @"'requires':[{'matchLabels':{'any:env':'prod'}" },
        { "endPort", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 8000, endPort: 8010, protocol: TCP}]}]}]",
            @"{'port':8000,'protocol':'TCP','endPort':8010}" },
        { "named port in an ingress rule, any protocol", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: http}]}]}]",
            @"{'port':0,'protocol':'ANY','endPort':0,'name':'http'}" },
        { "named port in an egress rule", "  endpointSelector: {}\n  egress: [{toEndpoints: [{}], toPorts: [{ports: [{port: serve-81-udp, protocol: UDP}]}]}]",
            @"{'port':0,'protocol':'UDP','endPort':0,'name':'serve-81-udp'}" },
        { "named port in a deny rule", "  endpointSelector: {}\n  ingressDeny: [{toPorts: [{ports: [{port: metrics, protocol: TCP}]}]}]",
            @"'ingressDeny':[{'peers':null,'requires':[],'toPorts':[{'ports':[{'port':0,'protocol':'TCP','endPort':0,'name':'metrics'}]" },
        { "rules.http on a named port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: http, protocol: TCP}], rules: {http: [{method: GET}]}}]}]",
            @"{'port':0,'protocol':'TCP','endPort':0,'name':'http'}],'rules':{'http':[{'method':'GET'" },
        { "endPort equal to port is one port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, endPort: 80}]}]}]",
            @"{'port':80,'protocol':'ANY','endPort':0}" },
        { "rules.http", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, protocol: TCP}], rules: {http: [{method: GET, path: '/public/.*', host: 'api\\.example\\.com', headers: ['X-Token: 1']}]}}]}]",
            @"'rules':{'http':[{'method':'GET','path':'/public/.*','host':'api\\.example\\.com','headers':['X-Token: 1']}],'dns':[]}" },
        { "rules.http allow-all item", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80}], rules: {http: [{}]}}]}]",
            @"'rules':{'http':[{'method':null,'path':null,'host':null,'headers':[]}],'dns':[]}" },
        { "rules.dns", "  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: 53, protocol: ANY}], rules: {dns: [{matchName: Example.COM.}, {matchPattern: '*.example.com'}]}}]}]",
            @"'dns':[{'matchName':'example.com','matchPattern':null},{'matchName':null,'matchPattern':'*.example.com'}]" },
        { "toFQDNs", "  endpointSelector: {}\n  egress: [{toFQDNs: [{matchName: api.example.com}, {matchPattern: '*.cdn.example.com'}], toPorts: [{ports: [{port: 443, protocol: TCP}]}]}]",
            @"'peers':[{'fqdn':{'matchName':'api.example.com','matchPattern':null}},{'fqdn':{'matchName':null,'matchPattern':'*.cdn.example.com'}}]" },
        { "enableDefaultDeny", "  endpointSelector: {}\n  enableDefaultDeny: {ingress: false, egress: true}\n  ingress: [{fromEntities: [world]}]",
            @"'enableDefaultDeny':{'ingress':false,'egress':true}" },
        { "labels", "  endpointSelector: {}\n  labels: [{key: team, value: payments}, {key: tier, value: web, source: k8s}]",
            @"'labels':['unspec:team=payments','k8s:tier=web']" },
        { "description", "  endpointSelector: {}\n  description: lock the api down", @"'description':'lock the api down'" },
        { "ingressDeny with entities", "  endpointSelector: {}\n  ingressDeny: [{fromEntities: [world], toPorts: [{ports: [{port: 22, protocol: TCP}]}]}]",
            @"'ingressDeny':[{'peers':[{'entity':'World'}]" },
    };

    [Theory]
    [MemberData(nameof(Accepted))]
    public void A_field_of_the_rule_language_parses_into_the_canonical_form(string field, string spec, string expectedJson)
    {
        var json = PolicyJson.Serialize(ParseOk(WithSpec(spec)));
        Assert.True(json.Contains(expectedJson.Replace('\'', '"'), StringComparison.Ordinal), $"{field}: {json}");
    }

    [Fact]
    public void A_cilium_cidr_peer_never_selects_endpoints()
    {
        var policy = ParseOk(WithSpec("  endpointSelector: {}\n  ingress: [{fromCIDR: [10.0.0.0/8]}]\n  egress: [{toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}]"));
        var peers = policy.Spec.Ingress.Concat(policy.Spec.Egress).SelectMany(r => r.Peers!).ToList();
        Assert.Equal(2, peers.Count);
        Assert.All(peers, p => Assert.False(Assert.IsType<PeerSelector.Cidr>(p).SelectsEndpoints));
    }

    [Fact]
    public void Specs_holds_several_rule_sets_after_spec()
    {
        var policy = ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: layered}
            spec: {endpointSelector: {matchLabels: {app: a}}, ingress: [{}]}
            specs:
              - endpointSelector: {matchLabels: {app: b}}
                egress: [{toEntities: [world]}]
              - endpointSelector: {matchLabels: {app: c}}
            """);
        Assert.Equal(["any:app=a", "any:app=b", "any:app=c"], policy.Specs.Select(s => s.EndpointSelector.ToString()));
        Assert.Equal(PolicyKind.CiliumClusterwideNetworkPolicy, policy.Kind);
        Assert.True(policy.Specs[1].EnforcesEgress);
        Assert.False(policy.Specs[2].EnforcesIngress);
    }

    [Fact]
    public void Enable_default_deny_false_keeps_a_direction_with_rules_unenforced()
    {
        var spec = ParseOk(WithSpec("  endpointSelector: {}\n  enableDefaultDeny: {ingress: false}\n  ingress: [{fromEntities: [world]}]\n  egress: [{}]")).Spec;
        Assert.False(spec.EnforcesIngress);
        Assert.True(spec.EnforcesEgress);
    }

    [Fact]
    public void A_yaml_and_a_json_document_with_every_field_give_the_same_policy()
    {
        var yaml = ParseOk(WithSpec("""
              endpointSelector: {matchLabels: {app: api}}
              enableDefaultDeny: {egress: false}
              ingress:
                - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [10.9.0.0/16]}]
                  toPorts: [{ports: [{port: "8000", endPort: 8010, protocol: TCP}]}]
              egress:
                - toFQDNs: [{matchPattern: "*.example.com"}]
                  toPorts: [{ports: [{port: 443}], rules: {dns: [{matchName: a.example.com}]}}]
            """));
        var json = ParseOk("""
            {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "shop"},
             "spec": {"endpointSelector": {"matchLabels": {"app": "api"}}, "enableDefaultDeny": {"egress": false},
               "ingress": [{"fromCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}],
                            "toPorts": [{"ports": [{"port": 8000, "endPort": 8010, "protocol": "TCP"}]}]}],
               "egress": [{"toFQDNs": [{"matchPattern": "*.example.com"}],
                           "toPorts": [{"ports": [{"port": "443"}], "rules": {"dns": [{"matchName": "a.example.com"}]}}]}]}}
            """);
        Assert.Equal(PolicyJson.Serialize(yaml), PolicyJson.Serialize(json));
        Assert.Equal(PolicyJson.Serialize(yaml), PolicyJson.Serialize(PolicyJson.Deserialize(PolicyJson.Serialize(yaml))));
    }

    [Fact]
    public void Named_ports_in_allow_and_deny_rules_read_the_same_from_yaml_and_json()
    {
        var yaml = ParseOk(WithSpec("""
              endpointSelector: {matchLabels: {app: api}}
              ingress:
                - fromEndpoints: [{matchLabels: {app: web}}]
                  toPorts: [{ports: [{port: http, protocol: TCP}, {port: "8080"}]}]
              egressDeny:
                - toEndpoints: [{}]
                  toPorts: [{ports: [{port: serve-81-udp, protocol: UDP}]}]
            """));
        var json = ParseOk("""
            {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "p", "namespace": "shop"},
             "spec": {"endpointSelector": {"matchLabels": {"app": "api"}},
               "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "web"}}],
                            "toPorts": [{"ports": [{"port": "http", "protocol": "TCP"}, {"port": 8080}]}]}],
               "egressDeny": [{"toEndpoints": [{}], "toPorts": [{"ports": [{"port": "serve-81-udp", "protocol": "UDP"}]}]}]}}
            """);
        Assert.Equal(PolicyJson.Serialize(yaml), PolicyJson.Serialize(json));
        var spec = Assert.Single(yaml.Specs);
        Assert.Equal([PortProtocol.Named("http", Protocol.Tcp), new PortProtocol(8080, Protocol.Any)], spec.Ingress[0].Ports);
        Assert.Equal([PortProtocol.Named("serve-81-udp", Protocol.Udp)], spec.EgressDeny[0].Ports);
        Assert.Equal(PolicyJson.Serialize(yaml), PolicyJson.Serialize(PolicyJson.Deserialize(PolicyJson.Serialize(yaml))));
    }

    public static TheoryData<string, string, string, string> Refusals => new()
    {
        { "HTTP rules on a UDP named port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: dns, protocol: UDP}], rules: {http: [{}]}}]}]",
            "spec.ingress[0].toPorts[0].ports[0]", "HTTP rules need TCP, not UDP" },
        { "port name with '--' in an egress rule", "  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: a--b}]}]}]",
            "spec.egress[0].toPorts[0].ports[0].port",
            "\"a--b\" is neither a port number (1-65535) nor a port name: as a name it has two '-' in a row (expected " + PortName.Expected + ")" },
        { "nodeSelector", "  nodeSelector: {}\n  ingress: [{}]", "spec.nodeSelector",
            "is not supported: Mesh enforces policy on endpoints, not on nodes (select endpoints with endpointSelector)" },
        { "unknown entity", "  endpointSelector: {}\n  ingress: [{fromEntities: [internet]}]", "spec.ingress[0].fromEntities[0]",
            "\"internet\" is not an entity (expected one of all, cluster, health, host, ingress, init, kube-apiserver, remote-node, unmanaged, world)" },
        { "bad CIDR", "  endpointSelector: {}\n  egress: [{toCIDR: [10.0.0.0/33]}]", "spec.egress[0].toCIDR[0]",
            "\"10.0.0.0/33\" is not a CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)" },
        { "except outside its CIDR", "  endpointSelector: {}\n  egress: [{toCIDRSet: [{cidr: 10.0.0.0/16, except: [10.2.0.0/24]}]}]",
            "spec.egress[0].toCIDRSet[0].except[0]", "10.2.0.0/24 is not inside 10.0.0.0/16 (an except must be a smaller part of its CIDR)" },
        { "CIDR set without cidr", "  endpointSelector: {}\n  egress: [{toCIDRSet: [{except: [10.2.0.0/24]}]}]",
            "spec.egress[0].toCIDRSet[0].cidr", "is required" },
        { "two kinds of peer in one rule", "  endpointSelector: {}\n  ingress: [{fromEndpoints: [{}], fromCIDR: [10.0.0.0/8]}]",
            "spec.ingress[0]", "combining fromEndpoints and fromCIDR in one rule is not supported (write one rule per kind of peer)" },
        { "toFQDNs on ingress", "  endpointSelector: {}\n  ingress: [{toFQDNs: [{matchName: a.com}]}]", "spec.ingress[0].toFQDNs",
            "is not a field of an ingress rule (toFQDNs selects destinations of egress)" },
        { "toFQDNs in a deny rule", "  endpointSelector: {}\n  egressDeny: [{toFQDNs: [{matchName: a.com}]}]", "spec.egressDeny[0].toFQDNs",
            "is not allowed in a deny rule (Cilium has no toFQDNs in egressDeny)" },
        { "toCIDR in an ingress rule", "  endpointSelector: {}\n  ingress: [{toCIDR: [10.0.0.0/8]}]", "spec.ingress[0].toCIDR",
            "is not a field of this rule (it takes fromCIDR)" },
        { "endPort below port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 90, endPort: 80}]}]}]",
            "spec.ingress[0].toPorts[0].ports[0].endPort", "80 is below port 90 (expected port <= endPort)" },
        { "endPort without port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{endPort: 80}]}]}]",
            "spec.ingress[0].toPorts[0].ports[0].endPort", "needs a port to start the range (port is 0 or absent, which already means every port)" },
        { "L7 rules in a deny rule", "  endpointSelector: {}\n  ingressDeny: [{toPorts: [{ports: [{port: 80}], rules: {http: [{}]}}]}]",
            "spec.ingressDeny[0].toPorts[0].rules", "is not allowed in a deny rule (deny rules are L3/L4 only)" },
        { "L7 rules on every port", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{protocol: TCP}], rules: {http: [{}]}}]}]",
            "spec.ingress[0].toPorts[0].ports[0]", "L7 rules need a specific port (port 0 means every port)" },
        { "L7 rules on a range", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, endPort: 90}], rules: {http: [{}]}}]}]",
            "spec.ingress[0].toPorts[0].ports[0]", "L7 rules cannot apply to a port range (endPort)" },
        { "HTTP on UDP", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80, protocol: UDP}], rules: {http: [{}]}}]}]",
            "spec.ingress[0].toPorts[0].ports[0]", "HTTP rules need TCP, not UDP" },
        { "DNS rules on ingress", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 53}], rules: {dns: [{matchName: a.com}]}}]}]",
            "spec.ingress[0].toPorts[0].rules.dns", "is only allowed on egress (DNS rules inspect the endpoint's own lookups)" },
        { "http and dns together", "  endpointSelector: {}\n  egress: [{toPorts: [{ports: [{port: 53}], rules: {http: [{}], dns: [{matchName: a.com}]}}]}]",
            "spec.egress[0].toPorts[0].rules", "holds both http and dns rules (expected one kind of L7 rule per port rule)" },
        { "bad path regex", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80}], rules: {http: [{path: '/a('}]}}]}]",
            "spec.ingress[0].toPorts[0].rules.http[0].path", "\"/a(\" is not a regular expression: Invalid pattern '/a(' at offset 3. Not enough )'s." },
        { "DNS match with both fields", "  endpointSelector: {}\n  egress: [{toFQDNs: [{matchName: a.com, matchPattern: '*.a.com'}]}]",
            "spec.egress[0].toFQDNs[0]", "expected exactly one of matchName and matchPattern" },
        { "bad DNS pattern", "  endpointSelector: {}\n  egress: [{toFQDNs: [{matchPattern: 'a b.com'}]}]",
            "spec.egress[0].toFQDNs[0].matchPattern", "\"a b.com\" is not a DNS pattern (letters, digits, '-', '_', '.' and '*')" },
        { "enableDefaultDeny not a boolean", "  endpointSelector: {}\n  enableDefaultDeny: {ingress: sometimes}",
            "spec.enableDefaultDeny.ingress", "\"sometimes\" is not a boolean (expected true or false)" },
        { "unknown enableDefaultDeny field", "  endpointSelector: {}\n  enableDefaultDeny: {both: true}",
            "spec.enableDefaultDeny.both", "unknown field (expected ingress, egress)" },
        { "label without key", "  endpointSelector: {}\n  labels: [{value: x}]", "spec.labels[0].key", "is required" },
        { "unsupported header matches", "  endpointSelector: {}\n  ingress: [{toPorts: [{ports: [{port: 80}], rules: {http: [{headerMatches: []}]}}]}]",
            "spec.ingress[0].toPorts[0].rules.http[0].headerMatches", "is not supported yet; Mesh refuses the policy rather than enforce part of it" },
        { "empty specs", "  endpointSelector: {}", "", "" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void An_invalid_rule_is_refused_with_the_path_of_the_field(string name, string spec, string path, string message)
    {
        if (name == "empty specs")
        {
            var specs = PolicyParser.Parse("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\nspecs: []");
            Assert.Contains(new FieldError("specs", "is empty (expected at least one rule set)"), specs.Errors);
            return;
        }
        var result = PolicyParser.Parse(WithSpec(spec));
        Assert.False(result.Ok, name);
        Assert.Contains(new FieldError(path, message), result.Errors);
    }

    [Fact]
    public void Entities_and_cidrs_are_not_scoped_to_the_namespace_but_endpoints_are()
    {
        var policy = ParseOk(WithSpec("  endpointSelector: {}\n  ingress: [{fromEndpoints: [{matchLabels: {app: web}}]}]"));
        var selector = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[0].Peers!)).Selector;
        Assert.Equal("any:app=web, k8s:io.kubernetes.pod.namespace=shop", policy.Scope(selector).ToString());
        Assert.Equal([new Label("k8s", LabelSet.PodNamespaceKey, "shop")], policy.Scope(LabelSelector.All).MatchLabels
            .Select(kv => new Label(kv.Key.Source, kv.Key.Key, kv.Value)));
    }
}
