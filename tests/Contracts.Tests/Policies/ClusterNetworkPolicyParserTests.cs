using Mesh.Contracts.Input;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.Contracts.Tests.Policies;

/// <summary>
/// Kubernetes ClusterNetworkPolicy documents (policy.networking.k8s.io/v1alpha2) and the tiered policy each one
/// translates into: its tier, priority, subject, and first-match rules with actions, peers and protocols.
/// </summary>
public sealed class ClusterNetworkPolicyParserTests
{
    private const string AdminDocument = """
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata:
          name: isolate-tenants
          annotations: {team: security}
        spec:
          tier: Admin
          priority: 10
          subject:
            namespaces:
              matchLabels: {tenant: a}
          ingress:
          - name: from-monitoring
            action: Accept
            from:
            - namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
            protocols:
            - tcp: {destinationPort: {number: 9090}}
          - action: Deny
            from:
            - pods:
                namespaceSelector: {matchExpressions: [{key: tenant, operator: NotIn, values: [a]}]}
                podSelector: {matchLabels: {app: scanner}}
          - name: the-rest-to-namespace-policies
            action: Pass
            from:
            - namespaces: {}
          egress:
          - name: dns
            action: Accept
            to:
            - pods:
                namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
                podSelector: {matchLabels: {k8s-app: kube-dns}}
            protocols:
            - udp: {destinationPort: {number: 53}}
            - tcp: {destinationPort: {number: 53}}
          - name: nodes-and-metadata
            action: Deny
            to:
            - nodes: {}
            - networks: [169.254.169.254/32, "fd00:ec2::254/128"]
            protocols:
            - tcp: {destinationPort: {range: {start: 1, end: 1024}}}
            - sctp: {destinationPort: {number: 9}}
          - name: web
            action: Accept
            to:
            - pods: {podSelector: {matchLabels: {app: web}}}
            protocols:
            - destinationNamedPort: http
        status:
          conditions: []
        """;

    private const string BaselineDocument = """
        {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy", "metadata": {"name": "default-deny"},
         "spec": {"tier": "Baseline", "priority": 1000,
                  "subject": {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "db"}}}},
                  "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}]}}
        """;

    private static readonly SelectorRequirement AnyPodNamespace =
        new(new SelectorKey(Label.SourceK8s, LabelSet.PodNamespaceKey), SelectorOperator.Exists, []);

    private static KeyValuePair<SelectorKey, string> PodLabel(string key, string value) => KeyValuePair.Create(new SelectorKey(Label.SourceK8s, key), value);

    private static KeyValuePair<SelectorKey, string> NamespaceLabel(string key, string value) =>
        KeyValuePair.Create(new SelectorKey(Label.SourceK8s, LabelSet.NamespaceLabelsPrefix + key), value);

    /// <summary>Pods (only pods) of any namespace whose pod and namespace labels match.</summary>
    private static LabelSelector PodsWith(params KeyValuePair<SelectorKey, string>[] labels) => new(labels, [AnyPodNamespace]);

    private static PeerSelector Endpoints(LabelSelector selector) => new PeerSelector.Endpoints(selector);

    private static PolicyRule Rule(RuleAction action, string? name, PeerSelector[] peers, params PortProtocol[] ports) =>
        new(peers, ports.Length == 0 ? [] : [new PortRule(ports)], []) { Action = action, Name = name };

    private static NetworkPolicy ParseOk(string document)
    {
        var result = PolicyParser.Parse(document, "ignored");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
        return result.Policy;
    }

    private static string Document(string spec, string metadata = "{name: isolate}") => $"""
        apiVersion: policy.networking.k8s.io/v1alpha2
        kind: ClusterNetworkPolicy
        metadata: {metadata}
        spec:
        {spec}
        """;

    /// <summary>The first lines of a valid spec, for documents that test one rule.</summary>
    private const string Head = "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n";

    [Fact]
    public void An_admin_policy_becomes_one_cluster_wide_rule_set_of_the_admin_tier_with_its_rules_in_order()
    {
        var expected = new NetworkPolicy(null, "isolate-tenants", [new PolicySpec(
            PodsWith(NamespaceLabel("tenant", "a")),
            Ingress:
            [
                Rule(RuleAction.Accept, "from-monitoring", [Endpoints(PodsWith(NamespaceLabel("kubernetes.io/metadata.name", "monitoring")))],
                    PortProtocol.Tcp(9090)),
                Rule(RuleAction.Deny, null, [Endpoints(new LabelSelector([PodLabel("app", "scanner")],
                    [new SelectorRequirement(NamespaceLabel("tenant", "").Key, SelectorOperator.NotIn, ["a"]), AnyPodNamespace]))]),
                Rule(RuleAction.Pass, "the-rest-to-namespace-policies", [Endpoints(PodsWith())]),
            ],
            IngressDeny: [],
            Egress:
            [
                Rule(RuleAction.Accept, "dns", [Endpoints(PodsWith(PodLabel("k8s-app", "kube-dns"), NamespaceLabel("kubernetes.io/metadata.name", "kube-system")))],
                    PortProtocol.Udp(53), PortProtocol.Tcp(53)),
                Rule(RuleAction.Deny, "nodes-and-metadata",
                    [
                        new PeerSelector.EntityPeer(Entity.Host), new PeerSelector.EntityPeer(Entity.RemoteNode),
                        new PeerSelector.Cidr(CidrPrefix.Parse("169.254.169.254/32"), [], SelectsEndpoints: true),
                        new PeerSelector.Cidr(CidrPrefix.Parse("fd00:ec2::254/128"), [], SelectsEndpoints: true),
                    ],
                    new PortProtocol(1, Protocol.Tcp, 1024), new PortProtocol(9, Protocol.Sctp)),
                Rule(RuleAction.Accept, "web", [Endpoints(PodsWith(PodLabel("app", "web")))], PortProtocol.Named("http", Protocol.Any)),
            ],
            EgressDeny: [],
            Description: null) { EnableDefaultDeny = new DefaultDeny(false, false) }], PolicyKind.ClusterNetworkPolicy)
        {
            Tier = PolicyTier.Admin,
            Priority = 10,
        };

        var policy = ParseOk(AdminDocument);

        Assert.Equal(PolicyJson.Serialize(expected), PolicyJson.Serialize(policy));
        Assert.Equal((PolicyKind.ClusterNetworkPolicy, null, PolicyTier.Admin, 10, PolicyMode.Enforce),
            (policy.Kind, policy.Namespace, policy.Tier, policy.Priority, policy.Mode));
        Assert.True(policy.Tiered);
        Assert.False(policy.Spec.EnforcesIngress);
        Assert.False(policy.Spec.EnforcesEgress);
        Assert.Equal("ClusterNetworkPolicy isolate-tenants", policy.Reference);
    }

    [Fact]
    public void A_baseline_policy_in_JSON_with_an_empty_namespace_selector_selects_its_pods_in_every_namespace()
    {
        var expected = new NetworkPolicy(null, "default-deny", [new PolicySpec(PodsWith(PodLabel("app", "db")),
            [Rule(RuleAction.Deny, null, [Endpoints(PodsWith())])], [], [], [], null) { EnableDefaultDeny = new DefaultDeny(false, false) }],
            PolicyKind.ClusterNetworkPolicy) { Tier = PolicyTier.Baseline, Priority = 1000 };

        var policy = ParseOk(BaselineDocument);

        Assert.Equal(PolicyJson.Serialize(expected), PolicyJson.Serialize(policy));
        Assert.Equal((PolicyTier.Baseline, 1000), (policy.Tier, policy.Priority));
        Assert.Empty(policy.Spec.Egress);
    }

    [Fact]
    public void An_absent_namespace_selector_is_every_namespace_like_an_empty_one()
    {
        var absent = ParseOk(Document(Head + "  egress: [{action: Accept, to: [{pods: {podSelector: {matchLabels: {app: web}}}}]}]"));
        var empty = ParseOk(Document(Head + "  egress: [{action: Accept, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}]"));
        Assert.Equal(PolicyJson.Hash(absent), PolicyJson.Hash(empty));
    }

    [Fact]
    public void The_subject_and_namespace_peers_select_pods_of_the_matching_namespaces_and_never_host_or_world()
    {
        var policy = ParseOk(AdminDocument);
        var subject = policy.EffectiveEndpointSelector(policy.Spec);
        Assert.True(subject.Matches(Pod("shop", "web", tenant: "a")));
        Assert.False(subject.Matches(Pod("other", "web", tenant: "b")));
        Assert.False(subject.Matches(LabelSet.From(new Label("reserved", "host", ""))));

        var everyNamespace = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[2].Peers!)).Selector;
        Assert.True(everyNamespace.Matches(Pod("any", "thing", tenant: "z")));
        Assert.False(everyNamespace.Matches(LabelSet.From(new Label("reserved", "world", ""))));

        var scanners = Assert.IsType<PeerSelector.Endpoints>(Assert.Single(policy.Spec.Ingress[1].Peers!)).Selector;
        Assert.True(scanners.Matches(Pod("b-ns", "scanner", tenant: "b")));
        Assert.False(scanners.Matches(Pod("a-ns", "scanner", tenant: "a")));
        Assert.False(scanners.Matches(Pod("b-ns", "web", tenant: "b")));
    }

    [Fact]
    public void Nodes_are_the_host_and_the_remote_nodes_and_networks_also_select_the_pods_they_cover()
    {
        var rule = ParseOk(AdminDocument).Spec.Egress[1];
        Assert.Equal([new PeerSelector.EntityPeer(Entity.Host), new PeerSelector.EntityPeer(Entity.RemoteNode)], rule.Peers!.Take(2));
        Assert.All(rule.Peers!.Skip(2), peer => Assert.True(Assert.IsType<PeerSelector.Cidr>(peer).SelectsEndpoints));
    }

    [Fact]
    public void A_rule_without_protocols_matches_every_port_and_a_named_port_any_protocol()
    {
        var policy = ParseOk(AdminDocument);
        Assert.Empty(policy.Spec.Ingress[1].ToPorts);
        Assert.False(policy.Spec.Ingress[1].AllowsNothing);
        Assert.Equal([PortProtocol.Named("http", Protocol.Any)], policy.Spec.Egress[2].Ports);
        Assert.True(policy.Spec.Egress[2].HasNamedPorts);
    }

    [Fact]
    public void The_audit_annotation_audits_a_cluster_network_policy()
    {
        var policy = ParseOk(Document(Head, "{name: isolate, annotations: {policy.mesh.io/mode: audit}}"));
        Assert.Equal(PolicyMode.Audit, policy.Mode);
        Assert.Equal(PolicyMode.Audit, PolicyJson.Deserialize(PolicyJson.Serialize(policy)).Mode);
        Assert.Equal([new FieldError("metadata.annotations.policy.mesh.io/mode", "\"loud\" is not a policy mode (expected enforce or audit)")],
            PolicyParser.Parse(Document(Head, "{name: isolate, annotations: {policy.mesh.io/mode: loud}}")).Errors);
    }

    [Fact]
    public void A_parsed_cluster_network_policy_survives_its_canonical_json_with_tier_priority_actions_and_names()
    {
        var policy = ParseOk(AdminDocument);
        var json = PolicyJson.Serialize(policy);
        var back = PolicyJson.Deserialize(json);

        Assert.Equal(PolicyJson.Hash(policy), PolicyJson.Hash(back));
        Assert.Equal(json, PolicyJson.Serialize(back));
        Assert.Equal((PolicyKind.ClusterNetworkPolicy, PolicyTier.Admin, 10), (back.Kind, back.Tier, back.Priority));
        Assert.Equal(policy.Spec.Egress.Select(r => (r.Action, r.Name)), back.Spec.Egress.Select(r => (r.Action, r.Name)));
        Assert.Contains("\"tier\":\"Admin\",\"priority\":10", json, StringComparison.Ordinal);
    }

    [Fact]
    public void Priority_and_tier_change_the_hash()
    {
        var first = ParseOk(Document(Head));
        Assert.NotEqual(PolicyJson.Hash(first), PolicyJson.Hash(ParseOk(Document(Head.Replace("priority: 1", "priority: 2", StringComparison.Ordinal)))));
        Assert.NotEqual(PolicyJson.Hash(first), PolicyJson.Hash(ParseOk(Document(Head.Replace("Admin", "Baseline", StringComparison.Ordinal)))));
    }

    [Fact]
    public void A_cilium_network_policy_keeps_its_canonical_bytes_without_tier_priority_or_action()
    {
        var cilium = ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: p, namespace: a}
            spec:
              endpointSelector: {matchLabels: {app: web}}
              ingress: [{fromEntities: [host], toPorts: [{ports: [{port: "80", protocol: TCP}]}]}]
            """);
        Assert.Equal("""
            {"namespace":"a","name":"p","kind":"CiliumNetworkPolicy","specs":[{"endpointSelector":{"matchLabels":{"any:app":"web"},"matchExpressions":[]},
            "ingress":[{"peers":[{"entity":"Host"}],"requires":[],"toPorts":[{"ports":[{"port":80,"protocol":"TCP","endPort":0}],"rules":null}]}],
            "ingressDeny":[],"egress":[],"egressDeny":[],"enableDefaultDeny":{"ingress":null,"egress":null},"labels":[],"description":null}]}
            """.ReplaceLineEndings(""), PolicyJson.Serialize(cilium));
    }

    [Fact]
    public void A_cluster_network_policy_and_a_clusterwide_cilium_policy_of_one_name_are_different_policies()
    {
        var tiered = ParseOk(Document(Head));
        var cilium = ParseOk("apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: isolate}\nspec: {endpointSelector: {}}");
        Assert.NotEqual(tiered.Reference, cilium.Reference);
        Assert.Equal(PolicyTier.Policy, cilium.Tier);
    }

    public static TheoryData<string, string, string, string> Refusals => new()
    {
        // The policy.
        { "bad tier", "  tier: Gold\n  priority: 1\n  subject: {namespaces: {}}", "spec.tier", "\"Gold\" is not a tier (expected Admin or Baseline)" },
        { "the policy tier", "  tier: Policy\n  priority: 1\n  subject: {namespaces: {}}", "spec.tier", "\"Policy\" is not a tier (expected Admin or Baseline)" },
        { "lowercase tier", "  tier: admin\n  priority: 1\n  subject: {namespaces: {}}", "spec.tier", "\"admin\" is not a tier (expected Admin or Baseline)" },
        { "missing tier", "  priority: 1\n  subject: {namespaces: {}}", "spec.tier", "is required" },
        { "missing priority", "  tier: Admin\n  subject: {namespaces: {}}", "spec.priority", "is required" },
        { "priority above 1000", "  tier: Admin\n  priority: 1001\n  subject: {namespaces: {}}", "spec.priority", "\"1001\" is out of range (expected 0 to 1000)" },
        { "negative priority", "  tier: Admin\n  priority: -1\n  subject: {namespaces: {}}", "spec.priority", "\"-1\" is out of range (expected 0 to 1000)" },
        { "priority beyond int", "  tier: Admin\n  priority: 99999999999\n  subject: {namespaces: {}}", "spec.priority", "\"99999999999\" is out of range (expected 0 to 1000)" },
        { "fractional priority", "  tier: Admin\n  priority: 1.5\n  subject: {namespaces: {}}", "spec.priority", "\"1.5\" is not an integer (expected 0 to 1000)" },
        { "priority with a leading zero", "  tier: Admin\n  priority: 010\n  subject: {namespaces: {}}", "spec.priority", "\"010\" is not an integer (expected 0 to 1000)" },
        { "priority as a list", "  tier: Admin\n  priority: [1]\n  subject: {namespaces: {}}", "spec.priority", "expected a single value, got a list" },
        { "missing subject", "  tier: Admin\n  priority: 1", "spec.subject", "is required (expected namespaces or pods)" },
        { "empty subject", "  tier: Admin\n  priority: 1\n  subject: {}", "spec.subject", "is empty (expected one of namespaces or pods)" },
        { "two subjects", "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}, pods: {podSelector: {}}}", "spec.subject",
            "sets namespaces and pods (expected exactly one of namespaces or pods)" },
        { "subject pods without podSelector", "  tier: Admin\n  priority: 1\n  subject: {pods: {namespaceSelector: {}}}", "spec.subject.pods.podSelector",
            "is required (use {} to select every pod of the namespaces)" },
        { "unknown subject field", "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}, endpoints: {}}", "spec.subject.endpoints",
            "unknown field (expected namespaces, pods)" },
        { "Cilium key syntax in the subject", "  tier: Admin\n  priority: 1\n  subject: {namespaces: {matchLabels: {'k8s:team': a}}}",
            "spec.subject.namespaces.matchLabels[\"k8s:team\"]",
            $"\"k8s:team\" is not a label key: it has characters other than letters, digits, '-', '_' and '.' (expected {KubernetesNames.LabelKeyExpected})" },
        { "unknown spec field", Head + "  podSelector: {}", "spec.podSelector", "unknown field (expected tier, priority, subject, ingress, egress)" },
        { "rules as a mapping", Head + "  ingress: {action: Accept}", "spec.ingress", "expected a list, got a mapping" },
        { "too many rules", Head + "  ingress: [" + string.Join(", ", Enumerable.Repeat("{action: Deny, from: [{namespaces: {}}]}", 26)) + "]",
            "spec.ingress", "has 26 rules; at most 25 are accepted" },

        // Rules.
        { "empty rule", Head + "  ingress: [~]", "spec.ingress[0]", "is empty (expected action and from)" },
        { "missing action", Head + "  ingress: [{from: [{namespaces: {}}]}]", "spec.ingress[0].action", "is required" },
        { "bad action", Head + "  egress: [{action: Allow, to: [{namespaces: {}}]}]", "spec.egress[0].action", "\"Allow\" is not an action (expected Accept, Deny or Pass)" },
        { "name too long", Head + $"  egress: [{{name: {new string('n', 101)}, action: Deny, to: [{{namespaces: {{}}}}]}}]", "spec.egress[0].name",
            "has 101 characters; at most 100 are accepted" },
        { "missing from", Head + "  ingress: [{action: Deny}]", "spec.ingress[0].from", "is required (1 to 25 peers)" },
        { "missing to", Head + "  egress: [{action: Deny}]", "spec.egress[0].to", "is required (1 to 25 peers)" },
        { "empty from", Head + "  ingress: [{action: Deny, from: []}]", "spec.ingress[0].from", "is empty (expected 1 to 25 peers)" },
        { "too many peers", Head + "  ingress: [{action: Deny, from: [" + string.Join(", ", Enumerable.Repeat("{namespaces: {}}", 26)) + "]}]",
            "spec.ingress[0].from", "has 26 peers; at most 25 are accepted" },
        { "to in an ingress rule", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], to: []}]", "spec.ingress[0].to",
            "is not a field of an ingress rule (it takes from)" },
        { "from in an egress rule", Head + "  egress: [{action: Deny, to: [{namespaces: {}}], from: []}]", "spec.egress[0].from",
            "is not a field of an egress rule (it takes to)" },
        { "v1alpha1 ports", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], ports: []}]", "spec.ingress[0].ports",
            "is not a field of a v1alpha2 rule (ports are written under protocols)" },
        { "unknown rule field", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], description: x}]", "spec.ingress[0].description",
            "unknown field (expected name, action, from, protocols)" },

        // Peers.
        { "empty ingress peer", Head + "  ingress: [{action: Deny, from: [{}]}]", "spec.ingress[0].from[0]", "is empty (expected one of namespaces or pods)" },
        { "null egress peer", Head + "  egress: [{action: Deny, to: [~]}]", "spec.egress[0].to[0]",
            "is empty (expected one of namespaces, pods, nodes, networks or domainNames)" },
        { "two kinds in one peer", Head + "  egress: [{action: Deny, to: [{namespaces: {}, networks: [10.0.0.0/8]}]}]", "spec.egress[0].to[0]",
            "sets namespaces and networks (expected exactly one of namespaces, pods, nodes, networks or domainNames)" },
        { "nodes in an ingress peer", Head + "  ingress: [{action: Deny, from: [{nodes: {}}]}]", "spec.ingress[0].from[0].nodes",
            "is a peer of egress rules only (an ingress peer is namespaces or pods)" },
        { "peer pods without podSelector", Head + "  ingress: [{action: Deny, from: [{pods: {namespaceSelector: {}}}]}]", "spec.ingress[0].from[0].pods.podSelector",
            "is required (use {} to select every pod of the namespaces)" },
        { "nodes by label", Head + "  egress: [{action: Deny, to: [{nodes: {matchLabels: {role: control-plane}}}]}]", "spec.egress[0].to[0].nodes",
            "Mesh does not select nodes by label: use {} (every node) or networks with the nodes' addresses" },
        { "bad CIDR", Head + "  egress: [{action: Deny, to: [{networks: [10.0.0.0/8, 10.0.0.300/8]}]}]", "spec.egress[0].to[0].networks[1]",
            "\"10.0.0.300/8\" is not a CIDR (expected e.g. 10.0.0.0/8 or 2001:db8::/32)" },
        { "address without a length", Head + "  egress: [{action: Deny, to: [{networks: [10.0.0.1]}]}]", "spec.egress[0].to[0].networks[0]",
            "\"10.0.0.1\" is not a CIDR (expected an address and its prefix length, e.g. 10.0.0.0/8 or fd00::/8)" },
        { "empty networks", Head + "  egress: [{action: Deny, to: [{networks: []}]}]", "spec.egress[0].to[0].networks", "is empty (expected 1 to 25 CIDRs)" },
        { "too many networks", Head + "  egress: [{action: Deny, to: [{networks: [" + string.Join(", ", Enumerable.Range(0, 26).Select(i => $"10.{i}.0.0/16")) + "]}]}]",
            "spec.egress[0].to[0].networks", "has 26 CIDRs; at most 25 are accepted" },
        { "domain names", Head + "  egress: [{action: Accept, to: [{domainNames: [example.com]}]}]", "spec.egress[0].to[0].domainNames",
            "not supported: use a CiliumClusterwideNetworkPolicy's toFQDNs for DNS names" },

        // Protocols.
        { "empty protocols", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: []}]", "spec.ingress[0].protocols",
            "is empty (expected 1 to 25 protocols; leave protocols out to match all traffic)" },
        { "too many protocols", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [" +
            string.Join(", ", Enumerable.Range(1, 26).Select(i => $"{{tcp: {{destinationPort: {{number: {i}}}}}}}")) + "]}]",
            "spec.ingress[0].protocols", "has 26 protocols; at most 25 are accepted" },
        { "empty protocol", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{}]}]", "spec.ingress[0].protocols[0]",
            "is empty (expected one of tcp, udp, sctp or destinationNamedPort)" },
        { "two protocols in one item", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 1}}, udp: {destinationPort: {number: 1}}}]}]",
            "spec.ingress[0].protocols[0]", "sets tcp and udp (expected exactly one of tcp, udp, sctp or destinationNamedPort)" },
        { "missing destinationPort", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{udp: {}}]}]", "spec.ingress[0].protocols[0].udp.destinationPort",
            "is required (number or range; leave protocols out to match every port)" },
        { "number and range", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 80, range: {start: 1, end: 2}}}}]}]",
            "spec.ingress[0].protocols[0].tcp.destinationPort", "sets number and range (expected exactly one of number or range)" },
        { "port 0", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {number: 0}}}]}]",
            "spec.ingress[0].protocols[0].tcp.destinationPort.number", "\"0\" is not a port number (1-65535)" },
        { "port 65536", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{sctp: {destinationPort: {number: 65536}}}]}]",
            "spec.ingress[0].protocols[0].sctp.destinationPort.number", "\"65536\" is not a port number (1-65535)" },
        { "range backwards", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {range: {start: 90, end: 80}}}}]}]",
            "spec.ingress[0].protocols[0].udp.destinationPort.range", "start 90 is not below end 80 (expected start < end)" },
        { "range of one port", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{udp: {destinationPort: {range: {start: 80, end: 80}}}}]}]",
            "spec.ingress[0].protocols[0].udp.destinationPort.range", "start 80 is not below end 80 (expected start < end)" },
        { "range without end", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 80}}}}]}]",
            "spec.ingress[0].protocols[0].tcp.destinationPort.range.end", "is required" },
        { "bad port name", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: Http}]}]",
            "spec.ingress[0].protocols[0].destinationNamedPort",
            $"\"Http\" is not a port name: it has characters other than lowercase letters, digits and '-' (expected {PortName.Expected})" },
        { "number as a port name", Head + "  ingress: [{action: Deny, from: [{namespaces: {}}], protocols: [{destinationNamedPort: 80}]}]",
            "spec.ingress[0].protocols[0].destinationNamedPort", $"\"80\" is not a port name: it has no letter (expected {PortName.Expected})" },
        { "named port towards networks", Head + "  egress: [{action: Accept, to: [{namespaces: {}}, {networks: [10.0.0.0/8]}], protocols: [{destinationNamedPort: http}]}]",
            "spec.egress[0].protocols[0].destinationNamedPort", "cannot be used in a rule whose to has a nodes or networks peer (only pods have named ports)" },
        { "named port towards nodes", Head + "  egress: [{action: Accept, to: [{nodes: {}}], protocols: [{destinationNamedPort: http}]}]",
            "spec.egress[0].protocols[0].destinationNamedPort", "cannot be used in a rule whose to has a nodes or networks peer (only pods have named ports)" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public void An_invalid_cluster_network_policy_is_refused_with_the_path_of_the_field(string name, string spec, string path, string message)
    {
        var result = PolicyParser.Parse(Document(spec));
        Assert.False(result.Ok, name);
        Assert.Null(result.Policy);
        Assert.Contains(new FieldError(path, message), result.Errors);
    }

    [Fact]
    public void Every_problem_of_a_document_is_reported_at_once()
    {
        var result = PolicyParser.Parse(Document(
            "  tier: Gold\n  priority: 2000\n  subject: {}\n  ingress: [{action: Allow, from: [{}]}]\n  egress: [{action: Deny, to: [{domainNames: [a.example]}]}]",
            "{name: isolate, namespace: shop}"));
        Assert.Null(result.Policy);
        Assert.Equal(
            [
                "metadata.namespace", "spec.tier", "spec.priority", "spec.subject", "spec.ingress[0].action", "spec.ingress[0].from[0]",
                "spec.egress[0].to[0].domainNames",
            ],
            result.Errors.Select(e => e.Path));
        Assert.Equal("a ClusterNetworkPolicy has no namespace", result.Errors[0].Message);
    }

    [Theory]
    [InlineData("policy.networking.k8s.io/v1alpha1", "\"policy.networking.k8s.io/v1alpha1\" is not the apiVersion of a ClusterNetworkPolicy (expected policy.networking.k8s.io/v1alpha2)")]
    [InlineData("cilium.io/v2", "\"cilium.io/v2\" is not the apiVersion of a ClusterNetworkPolicy (expected policy.networking.k8s.io/v1alpha2)")]
    public void A_cluster_network_policy_needs_the_v1alpha2_api_version(string apiVersion, string message)
    {
        var result = PolicyParser.Parse(Document(Head).Replace("policy.networking.k8s.io/v1alpha2", apiVersion, StringComparison.Ordinal));
        Assert.Equal([new FieldError("apiVersion", message)], result.Errors);
    }

    [Fact]
    public void The_v1alpha2_api_version_is_not_that_of_other_kinds() =>
        Assert.Contains(new FieldError("apiVersion", "\"policy.networking.k8s.io/v1alpha2\" is not the apiVersion of a CiliumClusterwideNetworkPolicy (expected cilium.io/v2)"),
            PolicyParser.Parse("apiVersion: policy.networking.k8s.io/v1alpha2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {name: p}\nspec: {endpointSelector: {}}").Errors);

    [Fact]
    public void Specs_and_Cilium_fields_are_not_fields_of_a_cluster_network_policy()
    {
        var result = PolicyParser.Parse(Document(Head + "  endpointSelector: {}") + "\nspecs: []");
        Assert.Contains(new FieldError("specs", "unknown field (expected apiVersion, kind, metadata, spec, status)"), result.Errors);
        Assert.Contains(new FieldError("spec.endpointSelector", "unknown field (expected tier, priority, subject, ingress, egress)"), result.Errors);
    }

    private static LabelSet Pod(string ns, string app, string tenant) =>
        LabelSet.ForPod(ns, new Dictionary<string, string> { ["app"] = app }, new Dictionary<string, string> { ["tenant"] = tenant });
}
