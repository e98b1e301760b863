using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;
using static Mesh.ControlPlane.Tests.Compilation.RuleBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>Entities, CIDRs, requirements, port ranges, L7 redirects and default-deny switches, compiled.</summary>
public sealed class PolicyLanguageCompilerTests
{
    public static TheoryData<string, NetworkPolicy[], PolicyCompilerTests.Expected> Cases => new()
    {
        {
            "fromEntities world admits the world identity",
            [Policy("world-443", App("db"), ingress: [To([Is(Entity.World)], Tcp(443))])],
            new(Db, true, false, "ingress peer=world TCP/443 allow shop/world-443 ingress[0]")
        },
        {
            "toEntities all is the wildcard peer",
            [Policy("out", App("db"), egress: [To([Is(Entity.All)], Udp(53))])],
            new(Db, false, true, "egress peer=any UDP/53 allow shop/out egress[0]")
        },
        {
            "cluster is every label identity plus the in-cluster reserved identities, never world",
            [Policy("in-cluster", App("db"), ingress: [To([Is(Entity.Cluster)], Tcp(80))])],
            new(Db, true, false,
                "ingress peer=host TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=unmanaged TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=health TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=init TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=remote-node TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=kube-apiserver TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=ingress TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=web TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=db TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=api TCP/80 allow shop/in-cluster ingress[0]",
                "ingress peer=other/web TCP/80 allow shop/in-cluster ingress[0]")
        },
        {
            "host, remote-node, health, init, unmanaged and kube-apiserver map to their reserved identities",
            [Policy("nodes", App("db"), ingress: [To([Is(Entity.Host), Is(Entity.RemoteNode), Is(Entity.Health),
                Is(Entity.Init), Is(Entity.Unmanaged), Is(Entity.KubeApiServer)])])],
            new(Db, true, false,
                "ingress peer=host any/* allow shop/nodes ingress[0]",
                "ingress peer=unmanaged any/* allow shop/nodes ingress[0]",
                "ingress peer=health any/* allow shop/nodes ingress[0]",
                "ingress peer=init any/* allow shop/nodes ingress[0]",
                "ingress peer=remote-node any/* allow shop/nodes ingress[0]",
                "ingress peer=kube-apiserver any/* allow shop/nodes ingress[0]")
        },
        {
            "toCIDR gives the CIDR a node-local identity",
            [Policy("docs", App("db"), egress: [To([Cidr("192.0.2.0/24")], Tcp(443))])],
            new(Db, false, true, "egress peer=local1 TCP/443 allow shop/docs egress[0]")
        },
        {
            "a CIDR with except admits the CIDR's identity and not the except's",
            [Policy("private", App("db"), egress: [To([Cidr("10.0.0.0/8", "10.1.0.0/16")])])],
            new(Db, false, true, "egress peer=local1 any/* allow shop/private egress[0]")
        },
        {
            "a wider CIDR admits the identity of a narrower CIDR inside it",
            [Policy("nested", App("db"), egress: [To([Cidr("10.0.0.0/8")]), To([Cidr("10.2.0.0/16")], Tcp(80))])],
            new(Db, false, true,
                "egress peer=local1 any/* allow shop/nested egress[0]",
                "egress peer=local2 any/* allow shop/nested egress[0]",
                "egress peer=local2 TCP/80 allow shop/nested egress[1]")
        },
        {
            "0.0.0.0/0 is the world identity itself, and its except gets an identity the rule does not admit",
            [Policy("internet", App("db"), egress: [To([Cidr("0.0.0.0/0", "10.0.0.0/8")], Tcp(443))])],
            new(Db, false, true, "egress peer=world TCP/443 allow shop/internet egress[0]")
        },
        {
            "world admits the node-local CIDR identities too",
            [Policy("world", App("db"), egress: [To([Is(Entity.World)]), To([Cidr("192.0.2.0/24")], Tcp(22))])],
            new(Db, false, true,
                "egress peer=world any/* allow shop/world egress[0]",
                "egress peer=local1 any/* allow shop/world egress[0]",
                "egress peer=local1 TCP/22 allow shop/world egress[1]")
        },
        {
            "fromRequires narrows the endpoint selectors of every policy that selects the endpoint",
            [Policy("from-shop", App("db"), ingress: [Peer(LabelSelector.All, Tcp(5432))]),
             Policy("only-web", App("db"), ingress: [Requiring(App("web"))])],
            new(Db, true, false, "ingress peer=web TCP/5432 allow shop/from-shop ingress[0]")
        },
        {
            "fromRequires does not narrow entities or rules without peers",
            [Policy("open", App("db"), ingress: [To([Is(Entity.World)]), AnyPeer(Tcp(80))]),
             Policy("only-web", App("db"), ingress: [Requiring(App("web"))])],
            new(Db, true, false,
                "ingress peer=any TCP/80 allow shop/open ingress[1]",
                "ingress peer=world any/* allow shop/open ingress[0]")
        },
        {
            "fromRequires of an allow rule does not narrow deny rules",
            [Policy("deny-shop", App("db"), ingressDeny: [Peer(LabelSelector.All, Tcp(22))]),
             Policy("only-web", App("db"), ingress: [Requiring(App("web"))])],
            new(Db, true, false,
                "ingress peer=web TCP/22 deny shop/deny-shop ingressDeny[0]",
                "ingress peer=db TCP/22 deny shop/deny-shop ingressDeny[0]",
                "ingress peer=api TCP/22 deny shop/deny-shop ingressDeny[0]")
        },
        {
            "an endPort range becomes the fewest port prefixes",
            [Policy("range", App("db"), ingress: [AnyPeer(TcpRange(8000, 8010))])],
            new(Db, true, false,
                "ingress peer=any TCP/8000/13 allow shop/range ingress[0]",
                "ingress peer=any TCP/8008/15 allow shop/range ingress[0]",
                "ingress peer=any TCP/8010 allow shop/range ingress[0]")
        },
        {
            "HTTP rules mark their entries as an L7 redirect",
            [Policy("http", App("db"), ingress: [WithHttp([Selecting(App("web"))], Tcp(80))])],
            new(Db, true, false, "ingress peer=web TCP/80 allow l7 shop/http ingress[0]")
        },
        {
            "a redirect and a plain allow of the same key stay redirected, letting every request through",
            [Policy("plain", App("db"), ingress: [AnyPeer(Tcp(80))]), Policy("proxied", App("db"), ingress: [WithHttp(null, Tcp(80))])],
            new(Db, true, false, "ingress peer=any TCP/80 allow l7(all) shop/plain ingress[0]")
        },
        {
            "a deny of the same key beats a redirect",
            [Policy("proxied", App("db"), ingress: [WithHttp(null, Tcp(80))], ingressDeny: [AnyPeer(Tcp(80))])],
            new(Db, true, false, "ingress peer=any TCP/80 deny shop/proxied ingressDeny[0]")
        },
        {
            "toFQDNs gets a node-local identity, allowed plainly: DNS rules send traffic to the proxy, names do not",
            [Policy("fqdn", App("db"), egress: [To([Fqdn("api.example.com")], Tcp(443))])],
            new(Db, false, true, "egress peer=local1 TCP/443 allow shop/fqdn egress[0]")
        },
        {
            "enableDefaultDeny false keeps ingress unenforced, yet its allows are compiled",
            [WithDefaultDeny(Policy("soft", App("db"), ingress: [Peer(App("web"))]), new DefaultDeny(false, null))],
            new(Db, false, false, "ingress peer=web any/* allow shop/soft ingress[0]")
        },
        {
            "enableDefaultDeny true enforces a direction without rules",
            [WithDefaultDeny(Policy("lock-egress", App("db")), new DefaultDeny(null, true))],
            new(Db, false, true)
        },
        {
            "one enforcing policy is enough, whatever another says",
            [WithDefaultDeny(Policy("soft", App("db"), ingress: [Peer(App("web"))]), new DefaultDeny(false, null)),
             Policy("hard", App("db"), ingress: [Nothing])],
            new(Db, true, false, "ingress peer=web any/* allow shop/soft ingress[0]")
        },
        {
            "deny rules enforce their direction by default",
            [Policy("deny-only", App("db"), ingressDeny: [Peer(App("web"))])],
            new(Db, true, false, "ingress peer=web any/* deny shop/deny-only ingressDeny[0]")
        },
        {
            "an empty selector in a cluster-wide policy is the wildcard peer",
            [Policy("everyone", App("db"), ingress: [Peer(LabelSelector.All, Tcp(80))], ns: null)],
            new(Db, true, false, "ingress peer=any TCP/80 allow everyone ingress[0]")
        },
        {
            "an endpoint selector may name a reserved label",
            [Policy("from-host", App("db"), ingress: [Peer(LabelSelector.Of(new Dictionary<string, string> { ["reserved:host"] = "" }))], ns: null)],
            new(Db, true, false, "ingress peer=host any/* allow from-host ingress[0]")
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_the_rule_language_into_identity_entries(string name, NetworkPolicy[] policies, PolicyCompilerTests.Expected expected)
    {
        var policy = CompileNodeA(policies).PolicyOf(expected.Identity);
        Assert.NotNull(policy);
        Assert.True(expected.Ingress == policy.IngressEnforced, $"{name}: ingress enforced should be {expected.Ingress}");
        Assert.True(expected.Egress == policy.EgressEnforced, $"{name}: egress enforced should be {expected.Egress}");
        Assert.Equal(expected.Entries, Render(CompileNodeA(policies), expected.Identity));
    }

    [Fact]
    public void Cidr_identities_enter_the_ipcache_with_their_excepts_and_never_take_an_endpoint_address()
    {
        var snapshot = CompileNodeA(Policy("out", App("db"), egress: [To([Cidr("10.0.0.0/8", "10.1.0.0/16"), Cidr("10.201.0.20/32")])]));
        Assert.Equal(
        [
            new IpCacheEntry("10.0.0.0/8", Local1), new IpCacheEntry("10.1.0.0/16", Local2),
            new IpCacheEntry("10.201.0.9/32", Web), new IpCacheEntry("10.201.0.10/32", Web), new IpCacheEntry("10.201.0.20/32", Db),
            new IpCacheEntry("10.201.1.30/32", Api), new IpCacheEntry("10.201.1.40/32", OtherWeb),
        ], snapshot.IpCache);
    }

    [Fact]
    public void Cidr_identities_exist_only_on_nodes_that_enforce_a_policy_naming_them()
    {
        var snapshot = CompileNodeA(Policy("api-out", App("api"), egress: [To([Cidr("192.0.2.0/24")])]));
        Assert.DoesNotContain(snapshot.IpCache, e => e.Cidr == "192.0.2.0/24");
    }

    [Fact]
    public void Rule_references_of_a_policy_with_several_specs_name_the_spec()
    {
        var layered = new NetworkPolicy("shop", "layered",
        [
            new PolicySpec(App("web"), [AnyPeer(Tcp(80))], [], [], [], null),
            new PolicySpec(App("db"), [AnyPeer(Tcp(5432))], [], [], [], null),
        ], PolicyKind.CiliumNetworkPolicy);
        var snapshot = CompileNodeA(layered);
        Assert.Equal(["ingress peer=any TCP/5432 allow shop/layered specs[1].ingress[0]"], Render(snapshot, Db));
        Assert.Equal(["ingress peer=any TCP/80 allow shop/layered specs[0].ingress[0]"], Render(snapshot, Web));
    }

    [Fact]
    public void The_protobuf_form_carries_the_port_prefix_and_the_redirect()
    {
        var proto = CompileNodeA(Policy("mixed", App("db"), ingress: [AnyPeer(TcpRange(8000, 8007)), WithHttp(null, Tcp(80)), Peer(App("web"))])).ToProto();
        var entries = Assert.Single(proto.Policies, p => p.Identity == Db).Entries;
        Assert.Contains(entries, e => e.Port == 8000 && e.PortPrefixLen == 13 && e.L7 is null);
        Assert.Contains(entries, e => e.Port == 80 && e.PortPrefixLen == 16 && e.L7 is not null);
        Assert.Contains(entries, e => e.PeerIdentity == Web && e.Port == 0 && e.PortPrefixLen == 0 && e.Protocol == 0);
    }

    [Fact]
    public void Allows_of_one_key_send_the_union_of_their_http_rules_through_the_proxy()
    {
        var snapshot = CompileNodeA(
            Policy("reads", App("db"), ingress: [WithHttp(null, "GET", "/api/.*", Tcp(80))]),
            Policy("writes", App("db"), ingress: [WithHttp(null, "POST", "/api/orders", Tcp(80))]));
        var l7 = Assert.Single(snapshot.PolicyOf(Db)!.Entries).L7!;
        Assert.False(l7.AllowsAll);
        Assert.Equal(["GET /api/.*", "POST /api/orders"], l7.Http.Select(h => $"{h.Method} {h.Path}"));
        Assert.True(l7.AllowsRequest(new HttpRequestFacts("POST", "/api/orders", "db", [])));
        Assert.False(l7.AllowsRequest(new HttpRequestFacts("DELETE", "/api/orders", "db", [])));
        // The order the policies arrive in does not matter: the same content hash.
        Assert.Equal(snapshot.ContentHash, CompileNodeA(
            Policy("writes", App("db"), ingress: [WithHttp(null, "POST", "/api/orders", Tcp(80))]),
            Policy("reads", App("db"), ingress: [WithHttp(null, "GET", "/api/.*", Tcp(80))])).ContentHash);
    }

    [Fact]
    public void The_rules_of_a_redirect_are_part_of_the_content_hash_and_survive_the_wire()
    {
        var get = CompileNodeA(Policy("p", App("db"), ingress: [WithHttp(null, "GET", "/", Tcp(80))]));
        var post = CompileNodeA(Policy("p", App("db"), ingress: [WithHttp(null, "POST", "/", Tcp(80))]));
        Assert.NotEqual(get.ContentHash, post.ContentHash);
        var wire = Assert.Single(Assert.Single(post.ToProto().Policies, p => p.Identity == Db).Entries).L7;
        Assert.Equal(post.PolicyOf(Db)!.Entries[0].L7, Mesh.Contracts.Agent.L7Wire.FromProto(wire));
    }

    [Fact]
    public void A_redirect_changes_the_content_hash()
    {
        var plain = CompileNodeA(Policy("p", App("db"), ingress: [AnyPeer(Tcp(80))]));
        var proxied = CompileNodeA(Policy("p", App("db"), ingress: [WithHttp(null, Tcp(80))]));
        Assert.NotEqual(plain.ContentHash, proxied.ContentHash);
    }

    [Theory]
    [InlineData(8000, 8010, "8000/13 8008/15 8010/16")]
    [InlineData(80, 80, "80/16")]
    [InlineData(8000, 8007, "8000/13")]
    [InlineData(1024, 65535, "1024/6 2048/5 4096/4 8192/3 16384/2 32768/1")]
    [InlineData(1, 65535, "1/16 2/15 4/14 8/13 16/12 32/11 64/10 128/9 256/8 512/7 1024/6 2048/5 4096/4 8192/3 16384/2 32768/1")]
    [InlineData(0, 65535, "0/0")]
    public void A_port_range_is_covered_by_the_fewest_aligned_prefixes(int first, int last, string expected) =>
        Assert.Equal(expected, string.Join(" ", PortPrefixes.Cover((ushort)first, (ushort)last).Select(p => $"{p.Port}/{p.PrefixLength}")));

    private static NetworkPolicy WithDefaultDeny(NetworkPolicy policy, DefaultDeny defaultDeny) =>
        policy with { Specs = [policy.Spec with { EnableDefaultDeny = defaultDeny }] };
}
