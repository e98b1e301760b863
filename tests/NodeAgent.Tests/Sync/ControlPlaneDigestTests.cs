using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.NodeAgent.Sync;

namespace Mesh.NodeAgent.Tests.Sync;

/// <summary>
/// The control plane and the agent compute a snapshot's content hash with code of their own; a snapshot the control
/// plane compiled must hash the same here, with entries of every kind (deny, L7, port ranges, both directions).
/// </summary>
public sealed class ControlPlaneDigestTests
{
    private const string Policy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: mixed, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: db } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "5432", protocol: TCP }, { port: "9000", endPort: 9100, protocol: ANY } ] } ]
            - fromEndpoints: [ { matchLabels: { app: web } } ]
              toPorts: [ { ports: [ { port: "8080", protocol: TCP } ], rules: { http: [ { method: GET, path: "/api/.*" } ] } } ]
          ingressDeny:
            - fromCIDR: [ 10.210.0.0/16 ]
          egress:
            - toEntities: [ world ]
              toPorts: [ { ports: [ { port: "53", protocol: UDP } ] } ]
            - toFQDNs: [ { matchName: api.example.com }, { matchPattern: "*.example.com" } ]
              toPorts: [ { ports: [ { port: "443", protocol: TCP } ] } ]
        """;

    [Fact]
    public void A_snapshot_the_control_plane_compiled_hashes_the_same_in_the_agent()
    {
        var parsed = PolicyParser.Parse(Policy);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        var none = new Dictionary<string, string>();
        var identities = new Dictionary<uint, LabelSet>
        {
            [256] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "web" }, none),
            [257] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "db" }, none),
        };
        CompilerEndpoint[] endpoints =
        [
            new("shop/web-1", "node-1", "10.201.0.1", "lxcweb1", 256),
            new("shop/db-1", "node-1", "10.201.0.2", "lxcdb1", 257),
        ];

        var snapshot = PolicyCompiler.Compile("node-1", 7, [parsed.Policy!], identities, endpoints);

        var entries = snapshot.Policies.SelectMany(p => p.Entries).ToList();
        Assert.Contains(entries, e => e.Verdict == Verdict.Deny);
        Assert.Contains(entries, e => e.L7Redirect);
        Assert.Contains(entries, e => e.Key.PortPrefixLength is > 0 and < 16);
        Assert.Equal(2, snapshot.Fqdns.Count);
        var held = new HeldSnapshot();
        Assert.True(held.Apply(snapshot.ToProto()), $"the agent hashes {held.ContentHash}, the control plane {snapshot.ContentHash}");
        Assert.Equal(snapshot.ToProto(), held.ToSnapshot());
    }

    [Fact]
    public void Deltas_that_add_renumber_and_remove_toFQDNs_selectors_hash_the_same_in_the_agent()
    {
        var compiler = new IncrementalCompiler();
        compiler.AllocateIdentity(256, LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "db" }, new Dictionary<string, string>()));
        compiler.RegisterEndpoint(new CompilerEndpoint("shop/db-1", "node-1", "10.201.0.2", "lxcdb1", 256));
        compiler.ApplyPolicy(Egress(ToFqdns(ApiName)));
        compiler.Commit(1);
        var held = new HeldSnapshot();
        Assert.True(held.Apply(compiler.Snapshot("node-1").ToProto()));

        // v2: a CIDR and a pattern are numbered before the name, which moves; v3: the name goes; v4: the policy goes.
        NetworkPolicy?[] versions = [Egress(ToFqdns(ApiName, AnyExample), ToDocs), Egress(ToFqdns(AnyExample), ToDocs), null];
        var sizes = new List<(int Added, int Removed)>();
        for (var version = 2; version < 2 + versions.Length; version++)
        {
            if (versions[version - 2] is { } policy) compiler.ApplyPolicy(policy);
            else compiler.DeletePolicy(PolicyKind.CiliumNetworkPolicy, "shop", "out");
            compiler.Commit(version);
            var delta = DeltaWire.ToProto(compiler.DeltaOf("node-1"), version - 1);
            sizes.Add((delta.FqdnsAdded.Count, delta.FqdnsRemoved.Count));

            Assert.True(held.Apply(delta), $"v{version}: the agent hashes {held.ContentHash}, the control plane {delta.ContentHash}");
            Assert.Equal(compiler.Snapshot("node-1").ToProto(), held.ToSnapshot());
        }
        Assert.Equal([(2, 1), (0, 1), (0, 1)], sizes);
        Assert.Empty(held.ToSnapshot().Fqdns);
    }

    private const string ApiName = "{ matchName: api.example.com }";
    private const string AnyExample = "{ matchPattern: \"*.example.com\" }";
    private const string ToDocs = "{ toCIDR: [ 192.0.2.0/24 ] }";

    private static string ToFqdns(params string[] matches) =>
        $"{{ toFQDNs: [ {string.Join(", ", matches)} ], toPorts: [ {{ ports: [ {{ port: \"443\", protocol: TCP }} ] }} ] }}";

    /// <summary>Egress rules of db's policy "out", in YAML flow style.</summary>
    private static NetworkPolicy Egress(params string[] rules)
    {
        var parsed = PolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: out, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              egress:
            """ + $" [ {string.Join(", ", rules)} ]");
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return parsed.Policy!;
    }

    [Fact]
    public void A_cilium_policy_and_the_network_policy_of_its_name_are_ordered_and_hashed_the_same_in_the_agent()
    {
        // Both admit web to db, on different ports: rules of both decide entries of one identity.
        var cilium = PolicyParser.Parse(Policy.Replace("name: mixed", "name: db"));
        var kubernetes = PolicyParser.Parse("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: db, namespace: shop }
            spec:
              podSelector: { matchLabels: { app: db } }
              ingress:
                - from: [ { podSelector: { matchLabels: { app: web } } } ]
                  ports: [ { port: 6432 }, { port: 5432 } ]
              egress: [ { ports: [ { port: 53, protocol: UDP } ] } ]
            """);
        Assert.True(cilium.Ok && kubernetes.Ok, string.Join("; ", cilium.Errors.Concat(kubernetes.Errors)));
        var none = new Dictionary<string, string>();
        var identities = new Dictionary<uint, LabelSet>
        {
            [256] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "web" }, none),
            [257] = LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "db" }, none),
        };
        CompilerEndpoint[] endpoints = [new("shop/db-1", "node-1", "10.201.0.2", "lxcdb1", 257)];

        var snapshot = PolicyCompiler.Compile("node-1", 7, [kubernetes.Policy!, cilium.Policy!], identities, endpoints);

        Assert.Contains("shop/db ingress[0]", snapshot.Rules);
        Assert.Contains("NetworkPolicy shop/db ingress[0]", snapshot.Rules);
        Assert.Equal(snapshot.Rules, snapshot.Rules.Reverse().Order(RuleOrder.Instance));
        var held = new HeldSnapshot();
        Assert.True(held.Apply(snapshot.ToProto()), $"the agent hashes {held.ContentHash}, the control plane {snapshot.ContentHash}");
    }

    [Fact]
    public void The_agent_orders_rule_texts_as_the_control_plane_orders_rules()
    {
        var random = new Random(17);
        var rules = Enumerable.Range(0, 400).Select(_ =>
        {
            var kind = (PolicyKind)random.Next(3);
            var ns = kind == PolicyKind.CiliumClusterwideNetworkPolicy ? null : $"n{random.Next(3)}";
            var name = $"p{random.Next(3)}";   // p0 has one rule set, the others several
            return new RuleReference(kind, ns, name, name == "p0" ? null : random.Next(12), (RuleSection)random.Next(4), random.Next(12));
        }).Distinct().ToList();

        var controlPlane = rules.Order().Select(r => r.ToString());
        var agent = rules.Select(r => r.ToString()).Order(RuleOrder.Instance);

        Assert.Equal(controlPlane, agent);
    }
}
