using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;
using static Mesh.ControlPlane.Tests.Compilation.RuleBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// Named ports, compiled: on ingress a name is the subject's (the endpoints of the identity compiled), on egress
/// each destination's, and every endpoint's for a destination that is not an endpoint selector's identity. Every
/// case is compiled both fully and incrementally, which must agree.
/// </summary>
public sealed class NamedPortCompilerTests
{
    private const uint Cache = 1005;

    private static ContainerPort Port(string name, ushort port, Protocol protocol = Protocol.Tcp) => new(name, port, protocol);

    private static PortProtocol Named(string name, Protocol protocol = Protocol.Tcp) => PortProtocol.Named(name, protocol);

    // Two web endpoints serve "http" on different numbers; db serves "http" on a third, and "dns" on UDP only.
    private static readonly IReadOnlyList<CompilerEndpoint> PortEndpoints =
    [
        new("shop/web-1", NodeA, "10.201.0.10", "lxc-web1", Web, [Port("http", 8080)]),
        new("shop/web-2", NodeA, "10.201.0.9", "lxc-web2", Web, [Port("http", 80)]),
        new("shop/db-1", NodeA, "10.201.0.20", "lxc-db1", Db, [Port("dns", 53, Protocol.Udp), Port("http", 9000), Port("pg", 5432)]),
        new("shop/api-1", NodeB, "10.201.1.30", "lxc-api1", Api, [Port("dns", 53), Port("http", 8443)]),
        new("other/web-1", NodeB, "10.201.1.40", "lxc-oweb1", OtherWeb),
    ];

    public static TheoryData<string, NetworkPolicy[], PolicyCompilerTests.Expected> Cases => new()
    {
        {
            "an ingress named port is the subject's: db's http, not the peer's",
            [Policy("p", App("db"), ingress: [Peer(App("web"), Named("http"))])],
            new(Db, true, false, "ingress peer=web TCP/9000 allow shop/p ingress[0]")
        },
        {
            "two endpoints of the subject's identity with different numbers give both",
            [Policy("p", App("web"), ingress: [AnyPeer(Named("http"))])],
            new(Web, true, false, "ingress peer=any TCP/80 allow shop/p ingress[0]", "ingress peer=any TCP/8080 allow shop/p ingress[0]")
        },
        {
            "an egress named port is each destination's, both numbers of web's endpoints",
            [Policy("p", App("db"), egress: [To([Selecting(App("web")), Selecting(App("api"))], Named("http"))])],
            new(Db, false, true,
                "egress peer=web TCP/80 allow shop/p egress[0]",
                "egress peer=web TCP/8080 allow shop/p egress[0]",
                "egress peer=api TCP/8443 allow shop/p egress[0]")
        },
        {
            "a protocol the named port is not served on gives nothing (db's dns is UDP)",
            [Policy("p", App("db"), ingress: [AnyPeer(Named("dns", Protocol.Tcp))])],
            new(Db, true, false)
        },
        {
            "protocol ANY takes the protocol the name is served on",
            [Policy("p", App("db"), ingress: [AnyPeer(Named("dns", Protocol.Any))])],
            new(Db, true, false, "ingress peer=any UDP/53 allow shop/p ingress[0]")
        },
        {
            "a name nobody serves allows nothing and is no error",
            [Policy("p", App("db"), ingress: [AnyPeer(Named("grpc", Protocol.Any))], egress: [Peer(App("web"), Named("grpc"))])],
            new(Db, true, true)
        },
        {
            "a name the subject does not serve allows nothing even when a peer serves it",
            [Policy("p", App("api"), ingress: [Peer(App("db"), Named("pg"))])],
            new(Api, true, false)
        },
        {
            "egress to any peer resolves the name over every endpoint of the cluster",
            [Policy("p", App("db"), egress: [AnyPeer(Named("http"))])],
            new(Db, false, true,
                "egress peer=any TCP/80 allow shop/p egress[0]",
                "egress peer=any TCP/8080 allow shop/p egress[0]",
                "egress peer=any TCP/8443 allow shop/p egress[0]",
                "egress peer=any TCP/9000 allow shop/p egress[0]")
        },
        {
            "egress to an entity resolves the name over every endpoint of the cluster",
            [Policy("p", App("db"), egress: [To([Is(Entity.World)], Named("dns", Protocol.Any))])],
            new(Db, false, true, "egress peer=world TCP/53 allow shop/p egress[0]", "egress peer=world UDP/53 allow shop/p egress[0]")
        },
        {
            "a deny may name a port",
            [Policy("p", App("db"), ingress: [Peer(App("web"))], ingressDeny: [AnyPeer(Named("http"))])],
            new(Db, true, false, "ingress peer=any TCP/9000 deny shop/p ingressDeny[0]", "ingress peer=web any/* allow shop/p ingress[0]")
        },
        {
            "an L7 rule on a named port redirects the resolved port",
            [Policy("p", App("db"), ingress: [WithHttp([Selecting(App("web"))], Named("http"))])],
            new(Db, true, false, "ingress peer=web TCP/9000 allow l7 shop/p ingress[0]")
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Named_ports_resolve_as_kubernetes_and_cilium_resolve_them(string name, NetworkPolicy[] policies, PolicyCompilerTests.Expected expected)
    {
        var snapshot = CompileBothWays(NodeOf(expected.Identity), policies, PortEndpoints);
        var policy = snapshot.PolicyOf(expected.Identity)!;
        Assert.True(expected.Ingress == policy.IngressEnforced, $"{name}: ingress enforced");
        Assert.True(expected.Egress == policy.EgressEnforced, $"{name}: egress enforced");
        Assert.Equal(expected.Entries, Render(snapshot, expected.Identity));
    }

    [Fact]
    public void An_endpoint_that_starts_serving_a_name_recompiles_exactly_the_identities_that_look_it_up()
    {
        var compiler = new IncrementalCompiler();
        var policy = Policy("metrics", App("db"), ingress: [Peer(App("web"), Named("metrics"))]);
        compiler.ApplyPolicy(policy);
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in PortEndpoints) compiler.RegisterEndpoint(e);
        compiler.Commit(1);
        Assert.Empty(Render(compiler.Snapshot(NodeA), Db));

        // A second db endpoint serves the name: db (and only db) recompiles, and the name resolves.
        var db2 = new CompilerEndpoint("shop/db-2", NodeB, "10.201.1.21", "lxc-db2", Db, [Port("metrics", 9100)]);
        compiler.RegisterEndpoint(db2);
        Assert.Equal(1, compiler.Commit(2).IdentitiesCompiled);
        Assert.Equal(["ingress peer=web TCP/9100 allow shop/metrics ingress[0]"], Render(compiler.Snapshot(NodeA), Db));
        Assert.Equal(["ingress peer=web TCP/9100 allow shop/metrics ingress[0]"], Render(compiler.Snapshot(NodeB), Db));

        // An endpoint of an identity nobody resolves the name for, and one that moves without changing its ports:
        // nothing recompiles.
        compiler.RegisterEndpoint(new CompilerEndpoint("shop/api-2", NodeB, "10.201.1.31", "lxc-api2", Api, [Port("metrics", 9200)]));
        compiler.RegisterEndpoint(PortEndpoints[0] with { Ip = "10.201.0.11" });
        Assert.Equal(0, compiler.Commit(3).IdentitiesCompiled);

        // Changing the number changes the entry; an equal number on another endpoint of db changes nothing.
        compiler.RegisterEndpoint(db2 with { Ports = [Port("metrics", 9101)] });
        compiler.RegisterEndpoint(new CompilerEndpoint("shop/db-3", NodeA, "10.201.0.23", "lxc-db3", Db, [Port("metrics", 9101)]));
        Assert.Equal(1, compiler.Commit(4).IdentitiesCompiled);
        Assert.Equal(["ingress peer=web TCP/9101 allow shop/metrics ingress[0]"], Render(compiler.Snapshot(NodeA), Db));
        compiler.DeleteEndpoint("shop/db-3");
        Assert.Equal(0, compiler.Commit(5).IdentitiesCompiled);

        // The last endpoint serving it leaves: the name resolves to nothing again.
        compiler.DeleteEndpoint("shop/db-2");
        compiler.Commit(6);
        Assert.Empty(Render(compiler.Snapshot(NodeA), Db));
        AssertEqualsFullCompile(compiler, 6, [policy]);
    }

    [Fact]
    public void A_peer_endpoint_changing_its_named_port_recompiles_the_identities_whose_egress_names_it()
    {
        var compiler = new IncrementalCompiler();
        var policy = Policy("to-web", App("db"), egress: [Peer(App("web"), Named("http"))]);
        compiler.ApplyPolicy(policy);
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in PortEndpoints) compiler.RegisterEndpoint(e);
        compiler.Commit(1);

        compiler.RegisterEndpoint(PortEndpoints[1] with { Ports = [Port("http", 81)] });
        Assert.Equal(1, compiler.Commit(2).IdentitiesCompiled);
        Assert.Equal(["egress peer=web TCP/81 allow shop/to-web egress[0]", "egress peer=web TCP/8080 allow shop/to-web egress[0]"],
            Render(compiler.Snapshot(NodeA), Db));
        AssertEqualsFullCompile(compiler, 2, [policy]);
    }

    /// <summary>
    /// A peer identity that appears after the policy was compiled is patched in rather than recompiled; a later
    /// change of its ports must still reach every subject patched (two here, sharing one compile).
    /// </summary>
    [Fact]
    public void A_peer_that_appears_later_and_then_changes_its_named_port_updates_every_subject()
    {
        var compiler = new IncrementalCompiler();
        // Cluster-wide: selects web in shop and in other, which share the compile.
        var policy = Policy("to-cache", App("web"), egress: [Peer(App("cache"), Named("redis"))], ns: null);
        compiler.ApplyPolicy(policy);
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in PortEndpoints) compiler.RegisterEndpoint(e);
        var cache = new CompilerEndpoint("shop/cache-1", NodeB, "10.201.1.50", "lxc-cache1", Cache, [Port("redis", 6379)]);
        compiler.RegisterEndpoint(cache);
        compiler.Commit(1);
        Assert.Empty(Render(compiler.Snapshot(NodeA), Web));

        compiler.AllocateIdentity(Cache, LabelSet.ForPod("shop", new Dictionary<string, string> { ["app"] = "cache" }, new Dictionary<string, string>()));
        compiler.Commit(2);
        Assert.Equal(["egress peer=1005 TCP/6379 allow to-cache egress[0]"], Render(compiler.Snapshot(NodeA), Web));
        Assert.Equal(["egress peer=1005 TCP/6379 allow to-cache egress[0]"], Render(compiler.Snapshot(NodeB), OtherWeb));

        compiler.RegisterEndpoint(cache with { Ports = [Port("redis", 6380)] });
        compiler.Commit(3);
        Assert.Equal(["egress peer=1005 TCP/6380 allow to-cache egress[0]"], Render(compiler.Snapshot(NodeA), Web));
        Assert.Equal(["egress peer=1005 TCP/6380 allow to-cache egress[0]"], Render(compiler.Snapshot(NodeB), OtherWeb));
        AssertEqualsFullCompile(compiler, 3, [policy]);
    }

    [Fact]
    public void Identities_of_the_same_specs_with_different_numbers_for_a_name_do_not_share_a_compile()
    {
        // Cluster-wide: web in shop serves http on 80 and 8080, web in other on 8081.
        var policy = Policy("web-http", App("web"), ingress: [AnyPeer(Named("http"))], ns: null);
        var endpoints = PortEndpoints.Select(e => e.Identity == OtherWeb ? e with { Ports = [Port("http", 8081)] } : e).ToList();
        var snapshotB = CompileBothWays(NodeB, [policy], endpoints);
        Assert.Equal(["ingress peer=any TCP/8081 allow web-http ingress[0]"], Render(snapshotB, OtherWeb));
        var snapshotA = CompileBothWays(NodeA, [policy], endpoints);
        Assert.Equal(["ingress peer=any TCP/80 allow web-http ingress[0]", "ingress peer=any TCP/8080 allow web-http ingress[0]"],
            Render(snapshotA, Web));
    }

    private static string NodeOf(uint identity) => PortEndpoints.First(e => e.Identity == identity).Node;

    /// <summary>The full compile of a node, after checking the incremental compiler gives the same snapshot.</summary>
    private static NodeSnapshot CompileBothWays(string node, NetworkPolicy[] policies, IReadOnlyList<CompilerEndpoint> endpoints)
    {
        var full = PolicyCompiler.Compile(node, 1, policies, CompilerBuilders.Identities, endpoints);
        var compiler = new IncrementalCompiler();
        foreach (var e in endpoints) compiler.RegisterEndpoint(e);
        foreach (var p in policies) compiler.ApplyPolicy(p);
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        compiler.Commit(1);
        Assert.Equal(full.ContentHash, compiler.Snapshot(node).ContentHash);
        return full;
    }

    private static void AssertEqualsFullCompile(IncrementalCompiler compiler, long version, NetworkPolicy[] policies)
    {
        foreach (var node in new[] { NodeA, NodeB })
        {
            var full = PolicyCompiler.Compile(node, version, policies, compiler.Identities, compiler.Endpoints);
            Assert.Equal(full.ContentHash, compiler.Snapshot(node).ContentHash);
        }
    }
}
