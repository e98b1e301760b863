using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

public sealed class PolicyCompilerTests
{
    /// <summary>What one local identity ends up with: enforcement per direction and its rendered entries.</summary>
    public sealed record Expected(uint Identity, bool Ingress, bool Egress, params string[] Entries);

    public static TheoryData<string, NetworkPolicy[], Expected> Cases => new()
    {
        {
            "deny beats allow for the same peer and port",
            [Policy("allow-web", App("db"), ingress: [Peer(App("web"), Tcp(5432))]),
             Policy("deny-web", App("db"), ingressDeny: [Peer(App("web"), Tcp(5432))])],
            new(Db, true, false, "ingress peer=web TCP/5432 deny shop/deny-web ingressDeny[0]")
        },
        {
            "deny beats allow within one policy",
            [Policy("mixed", App("db"), ingress: [Peer(App("web"))], ingressDeny: [Peer(App("web"))])],
            new(Db, true, false, "ingress peer=web any/* deny shop/mixed ingressDeny[0]")
        },
        {
            "L4-only allow applies to every peer",
            [Policy("dns", App("db"), ingress: [AnyPeer(Udp(53))])],
            new(Db, true, false, "ingress peer=any UDP/53 allow shop/dns ingress[0]")
        },
        {
            "L3-only allow applies to every port",
            [Policy("web-any-port", App("db"), ingress: [Peer(App("web"))])],
            new(Db, true, false, "ingress peer=web any/* allow shop/web-any-port ingress[0]")
        },
        {
            "ingress [{}] enforces default deny with no entries",
            [Policy("lock", App("db"), ingress: [Nothing])],
            new(Db, true, false)
        },
        {
            "egress [{}] enforces egress only",
            [Policy("lock-egress", App("db"), egress: [Nothing])],
            new(Db, false, true)
        },
        {
            "a peer selector that matches no identity enforces with no entries",
            [Policy("nobody", App("db"), ingress: [Peer(App("ghost"), Tcp(80))])],
            new(Db, true, false)
        },
        {
            "namespaced policy does not select pods of another namespace",
            [Policy("elsewhere", App("db"), ingress: [AnyPeer(Tcp(80))], ns: "other")],
            new(Db, false, false)
        },
        {
            "a peer selector in a namespaced policy only matches that namespace",
            [Policy("from-web", App("db"), ingress: [Peer(App("web"), Tcp(5432))])],
            new(Db, true, false, "ingress peer=web TCP/5432 allow shop/from-web ingress[0]")
        },
        {
            "a peer selector naming another namespace reaches into it",
            [Policy("from-other-web", App("db"), ingress: [Peer(AppIn("other", "web"), Tcp(5432))])],
            new(Db, true, false, "ingress peer=other/web TCP/5432 allow shop/from-other-web ingress[0]")
        },
        {
            "a clusterwide policy selects and admits pods of every namespace",
            [Policy("web-to-db", App("db"), ingress: [Peer(App("web"), Tcp(5432))], ns: null)],
            new(Db, true, false,
                "ingress peer=web TCP/5432 allow web-to-db ingress[0]",
                "ingress peer=other/web TCP/5432 allow web-to-db ingress[0]")
        },
        {
            "unselected identity is not enforced",
            [Policy("api-only", App("api"), ingress: [Nothing], egress: [Nothing])],
            new(Db, false, false)
        },
        {
            "a port with protocol ANY expands into TCP, UDP and SCTP",
            [Policy("any-proto", App("db"), ingress: [AnyPeer(AnyProtocol(8443))])],
            new(Db, true, false,
                "ingress peer=any TCP/8443 allow shop/any-proto ingress[0]",
                "ingress peer=any UDP/8443 allow shop/any-proto ingress[0]",
                "ingress peer=any SCTP/8443 allow shop/any-proto ingress[0]")
        },
        {
            "port 0 with a protocol means every port of that protocol",
            [Policy("all-udp", App("db"), ingress: [AnyPeer(Udp(0))])],
            new(Db, true, false, "ingress peer=any UDP/* allow shop/all-udp ingress[0]")
        },
        {
            "egress rules give egress entries for the destination",
            [Policy("web-egress", App("web"), egress: [Peer(App("db"), Tcp(5432))], egressDeny: [AnyPeer(Tcp(25))])],
            new(Web, false, true,
                "egress peer=any TCP/25 deny shop/web-egress egressDeny[0]",
                "egress peer=db TCP/5432 allow shop/web-egress egress[0]")
        },
        {
            "the same key from two allow rules keeps the first rule in sorted order",
            [Policy("b-allow", App("db"), ingress: [Peer(App("web"), Tcp(80))]),
             Policy("a-allow", App("db"), ingress: [Nothing, Peer(App("web"), Tcp(80))])],
            new(Db, true, false, "ingress peer=web TCP/80 allow shop/a-allow ingress[1]")
        },
        {
            "a general deny does not remove a specific allow: the datapath lets the deny win",
            [Policy("allow-web", App("db"), ingress: [Peer(App("web"), Tcp(80))], ingressDeny: [AnyPeer(Tcp(80))])],
            new(Db, true, false,
                "ingress peer=any TCP/80 deny shop/allow-web ingressDeny[0]",
                "ingress peer=web TCP/80 allow shop/allow-web ingress[0]")
        },
        {
            "entries are sorted by direction, peer, protocol and port",
            [Policy("many", App("db"),
                ingress: [Peer(App("web"), Udp(53), Tcp(443), Tcp(80)), AnyPeer(Tcp(22))],
                egress: [AnyPeer(Udp(53))])],
            new(Db, true, true,
                "ingress peer=any TCP/22 allow shop/many ingress[1]",
                "ingress peer=web TCP/80 allow shop/many ingress[0]",
                "ingress peer=web TCP/443 allow shop/many ingress[0]",
                "ingress peer=web UDP/53 allow shop/many ingress[0]",
                "egress peer=any UDP/53 allow shop/many egress[0]")
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compiles_policies_into_identity_entries(string name, NetworkPolicy[] policies, Expected expected)
    {
        var snapshot = CompileNodeA(policies);
        var policy = snapshot.PolicyOf(expected.Identity);

        Assert.NotNull(policy);
        Assert.True(expected.Ingress == policy.IngressEnforced, $"{name}: ingress enforced should be {expected.Ingress}");
        Assert.True(expected.Egress == policy.EgressEnforced, $"{name}: egress enforced should be {expected.Egress}");
        Assert.Equal(expected.Entries, Render(snapshot, expected.Identity));
    }

    [Fact]
    public void The_ipcache_holds_every_endpoint_of_the_cluster_in_address_order()
    {
        var snapshot = CompileNodeA();
        Assert.Equal(
        [
            new IpCacheEntry("10.201.0.9/32", Web), new IpCacheEntry("10.201.0.10/32", Web), new IpCacheEntry("10.201.0.20/32", Db),
            new IpCacheEntry("10.201.1.30/32", Api), new IpCacheEntry("10.201.1.40/32", OtherWeb),
        ], snapshot.IpCache);
    }

    [Fact]
    public void Only_endpoints_of_the_node_are_local_and_each_local_identity_gets_one_policy()
    {
        var snapshot = CompileNodeA();
        Assert.Equal(["shop/db-1", "shop/web-1", "shop/web-2"], snapshot.Endpoints.Select(e => e.Id));
        Assert.Equal([Web, Db], snapshot.Policies.Select(p => p.Identity));
        Assert.All(snapshot.Policies, p => Assert.False(p.IngressEnforced || p.EgressEnforced));
        Assert.Empty(snapshot.Rules);
    }

    [Fact]
    public void Rules_list_only_the_rules_that_produced_an_entry_in_sorted_order()
    {
        var snapshot = CompileNodeA(
            Policy("z-last", App("db"), ingress: [AnyPeer(Tcp(1))]),
            Policy("a-first", App("db"), ingress: [Nothing, AnyPeer(Tcp(2))], ingressDeny: [AnyPeer(Tcp(3))]),
            Policy("api-only", App("api"), ingress: [AnyPeer(Tcp(4))]));

        Assert.Equal(["shop/a-first ingress[1]", "shop/a-first ingressDeny[0]", "shop/z-last ingress[0]"], snapshot.Rules);
    }

    [Fact]
    public void Shuffled_inputs_give_the_same_snapshot_hash()
    {
        NetworkPolicy[] policies =
        [
            Policy("from-web", App("db"), ingress: [Peer(App("web"), Tcp(5432)), AnyPeer(Udp(53))]),
            Policy("deny-smtp", App("web"), egressDeny: [AnyPeer(Tcp(25))], egress: [Peer(App("db"))]),
            Policy("lock", App("api"), ingress: [Nothing]),
            Policy("everyone", LabelSelectorAll(), ingress: [Peer(AppIn("other", "web"), AnyProtocol(8080))], ns: null),
        ];
        var reference = PolicyCompiler.Compile(NodeA, 7, policies, CompilerBuilders.Identities, CompilerBuilders.Endpoints);

        var random = new Random(20261121);
        for (var round = 0; round < 20; round++)
        {
            var shuffledPolicies = policies.OrderBy(_ => random.Next()).ToArray();
            var shuffledEndpoints = CompilerBuilders.Endpoints.OrderBy(_ => random.Next()).ToArray();
            var shuffledIdentities = CompilerBuilders.Identities.OrderBy(_ => random.Next()).ToDictionary();
            var again = PolicyCompiler.Compile(NodeA, 7, shuffledPolicies, shuffledIdentities, shuffledEndpoints);

            Assert.Equal(reference.ContentHash, again.ContentHash);
            Assert.Equal(reference.ToProto(), again.ToProto());
        }
    }

    [Fact]
    public void The_version_is_not_part_of_the_content_hash()
    {
        var policy = Policy("from-web", App("db"), ingress: [Peer(App("web"), Tcp(5432))]);
        var v1 = PolicyCompiler.Compile(NodeA, 1, [policy], CompilerBuilders.Identities, CompilerBuilders.Endpoints);
        var v2 = PolicyCompiler.Compile(NodeA, 2, [policy], CompilerBuilders.Identities, CompilerBuilders.Endpoints);
        Assert.Equal(v1.ContentHash, v2.ContentHash);
        Assert.Matches("^[0-9a-f]{64}$", v1.ContentHash);
    }

    [Fact]
    public void A_changed_port_changes_the_content_hash()
    {
        var before = CompileNodeA(Policy("from-web", App("db"), ingress: [Peer(App("web"), Tcp(5432))]));
        var after = CompileNodeA(Policy("from-web", App("db"), ingress: [Peer(App("web"), Tcp(5433))]));
        Assert.NotEqual(before.ContentHash, after.ContentHash);
    }

    [Fact]
    public void A_policy_that_selects_nothing_on_this_node_leaves_its_hash_unchanged()
    {
        var without = CompileNodeA();
        var with = CompileNodeA(Policy("api-only", App("api"), ingress: [AnyPeer(Tcp(80))]));
        Assert.Equal(without.ContentHash, with.ContentHash);
    }

    [Fact]
    public void The_protobuf_form_carries_every_field()
    {
        var snapshot = CompileNodeA(Policy("web-egress", App("web"), egress: [Peer(App("db"), Tcp(5432))]));
        var proto = snapshot.ToProto();

        Assert.Equal(NodeA, proto.Node);
        Assert.Equal(42UL, proto.Version);
        Assert.Equal(snapshot.ContentHash, proto.ContentHash);
        Assert.Equal(5, proto.Ipcache.Count);
        Assert.Equal("lxc-db1", proto.Endpoints[0].InterfaceName);
        var web = Assert.Single(proto.Policies, p => p.Identity == Web);
        Assert.True(web.EgressEnforced);
        Assert.False(web.IngressEnforced);
        var entry = Assert.Single(web.Entries);
        Assert.Equal(Mesh.Contracts.Agent.Direction.Egress, entry.Direction);
        Assert.Equal(Db, entry.PeerIdentity);
        Assert.Equal(6u, entry.Protocol);
        Assert.Equal(5432u, entry.Port);
        Assert.Equal(Mesh.Contracts.Agent.Verdict.Allow, entry.Verdict);
        Assert.Equal("shop/web-egress egress[0]", proto.Rules[(int)entry.RuleIndex]);
    }

    private static Mesh.Contracts.Labels.LabelSelector LabelSelectorAll() => Mesh.Contracts.Labels.LabelSelector.All;
}
