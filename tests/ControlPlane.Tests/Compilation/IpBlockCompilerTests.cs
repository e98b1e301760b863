using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;
using static Mesh.ControlPlane.Tests.Compilation.RuleBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// A Kubernetes ipBlock selects the pods whose addresses it covers, per address, while a Cilium toCIDR never selects
/// a pod. Judged on packets from compiled snapshots (<see cref="SnapshotEvaluator"/>); every state is compiled fully
/// and incrementally, which must agree. web-1 (10.201.0.10) and web-2 (10.201.0.9) share the identity web.
/// </summary>
public sealed class IpBlockCompilerTests
{
    private static PeerSelector IpBlock(string cidr, params string[] except) =>
        new PeerSelector.Cidr(CidrPrefix.Parse(cidr), except.Select(CidrPrefix.Parse).ToList(), SelectsEndpoints: true);

    private static NetworkPolicy NetworkPolicy(string name, string selects, PolicyRule[]? ingress = null, PolicyRule[]? egress = null) =>
        Policy(name, App(selects), ingress: ingress, egress: egress) with { Kind = PolicyKind.KubernetesNetworkPolicy };

    /// <summary>The cluster of <see cref="CompilerBuilders"/> with some policies, compiled both ways.</summary>
    private sealed class Cluster
    {
        private readonly IncrementalCompiler compiler = new();
        private long version;

        public Cluster(params NetworkPolicy[] policies)
        {
            foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
            foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
            foreach (var p in policies) compiler.ApplyPolicy(p);
            Commit();
        }

        public IncrementalCompiler Compiler => compiler;

        /// <summary>Commits, and checks that the incremental snapshots are the full compile's.</summary>
        public void Commit()
        {
            compiler.Commit(++version);
            foreach (var node in new[] { NodeA, NodeB })
            {
                var full = PolicyCompiler.Compile(node, version, compiler.Policies, compiler.Identities, compiler.Endpoints);
                Assert.Equal(full.IpCache, compiler.Snapshot(node).IpCache);
                Assert.Equal(full.ContentHash, compiler.Snapshot(node).ContentHash);
            }
        }

        /// <summary>Whether a TCP/80 connection between two endpoints (by id) passes both ends' policies.</summary>
        public bool Connects(string from, string to)
        {
            var (source, destination) = (Endpoint(from), Endpoint(to));
            return SnapshotEvaluator.Connects(compiler.Snapshot(source.Node), source.Ip, compiler.Snapshot(destination.Node), destination.Ip,
                Protocol.Tcp, 80);
        }

        public CompilerEndpoint Endpoint(string id) => compiler.Endpoints.Single(e => e.Id == id);

        /// <summary>The identity an address has in a node's ipcache.</summary>
        public uint IpCacheIdentity(string node, string ip) => SnapshotEvaluator.Resolve(compiler.Snapshot(node), ip);
    }

    [Fact]
    public void An_ipBlock_of_a_pods_address_admits_that_pod_and_no_other()
    {
        var cluster = new Cluster(NetworkPolicy("to-api", "db", egress: [To([IpBlock("10.201.1.30/32")])]));

        Assert.True(cluster.Connects("shop/db-1", "shop/api-1"));
        Assert.False(cluster.Connects("shop/db-1", "other/web-1"));
        Assert.False(cluster.Connects("shop/db-1", "shop/web-1"));
        // api's only endpoint is covered whole: its identity is the peer, no address group is needed.
        Assert.Equal(Api, cluster.IpCacheIdentity(NodeA, "10.201.1.30"));
    }

    [Fact]
    public void An_ipBlock_on_ingress_admits_the_pod_it_covers()
    {
        var cluster = new Cluster(NetworkPolicy("from-db", "api", ingress: [To([IpBlock("10.201.0.20/32")])]));

        Assert.True(cluster.Connects("shop/db-1", "shop/api-1"));
        Assert.False(cluster.Connects("other/web-1", "shop/api-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/api-1"));
    }

    [Fact]
    public void An_except_carves_one_pod_out_of_the_block()
    {
        var cluster = new Cluster(NetworkPolicy("from-cluster", "db", ingress: [To([IpBlock("10.201.0.0/16", "10.201.1.40/32")])]));

        Assert.True(cluster.Connects("shop/api-1", "shop/db-1"));
        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("other/web-1", "shop/db-1"));
    }

    [Fact]
    public void Two_pods_of_one_identity_are_told_apart_by_a_block_that_covers_one()
    {
        var cluster = new Cluster(
            NetworkPolicy("from-web-1", "db", ingress: [To([IpBlock("10.201.0.10/32")])]),
            Policy("to-web", App("api"), egress: [Peer(App("web"))]),
            Policy("to-cluster", App("web"), egress: [To([Is(Entity.Cluster)])]) with { Namespace = "other" });

        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/db-1"));
        // web-1's address is an address group of web on every node; web-2's stays web, and so does web-1 itself.
        var group = cluster.IpCacheIdentity(NodeB, "10.201.0.10");
        Assert.True(new NumericIdentity(group).IsAddressGroup);
        Assert.Equal(Web, new NumericIdentity(group).LabelIdentity.Value);
        Assert.Equal(group, cluster.IpCacheIdentity(NodeA, "10.201.0.10"));
        Assert.Equal(Web, cluster.IpCacheIdentity(NodeA, "10.201.0.9"));
        Assert.Equal(Web, cluster.Compiler.Snapshot(NodeA).Endpoints.Single(e => e.Id == "shop/web-1").Identity);
        // What admits web by its labels, and the cluster entity, still admits both pods.
        Assert.True(cluster.Connects("shop/api-1", "shop/web-1"));
        Assert.True(cluster.Connects("shop/api-1", "shop/web-2"));
        Assert.True(cluster.Connects("other/web-1", "shop/web-1"));
        Assert.True(cluster.Connects("other/web-1", "shop/web-2"));
    }

    [Fact]
    public void A_cilium_toCIDR_over_a_pods_address_does_not_select_it()
    {
        var cilium = new Cluster(Policy("to-api", App("db"), egress: [To([Cidr("10.201.1.30/32")])]));
        Assert.False(cilium.Connects("shop/db-1", "shop/api-1"));

        var split = new Cluster(Policy("from-web-1", App("db"), ingress: [To([Cidr("10.201.0.10/32")])]));
        Assert.False(split.Connects("shop/web-1", "shop/db-1"));
        Assert.Equal(Web, split.IpCacheIdentity(NodeA, "10.201.0.10"));
    }

    [Fact]
    public void An_address_group_resolves_named_ports_as_its_label_identity()
    {
        var cluster = new Cluster(
            NetworkPolicy("from-web-1", "db", ingress: [To([IpBlock("10.201.0.10/32")])]),
            Policy("to-web-http", App("api"), egress: [Peer(App("web"), PortProtocol.Named("http", Protocol.Tcp))]));
        cluster.Compiler.RegisterEndpoint(cluster.Endpoint("shop/web-1") with { Ports = [new ContainerPort("http", 80, Protocol.Tcp)] });
        cluster.Commit();

        Assert.True(cluster.Connects("shop/api-1", "shop/web-1"));
        Assert.True(cluster.Connects("shop/api-1", "shop/web-2"));
    }

    [Fact]
    public void Pods_moving_across_the_block_and_a_changed_block_are_recompiled()
    {
        var cluster = new Cluster(NetworkPolicy("from-web", "db", ingress: [To([IpBlock("10.201.0.10/32")])]));
        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/db-1"));

        // web-1 leaves the block: neither pod is covered, and web needs no address group any more.
        Move(cluster, "shop/web-1", "10.201.0.12");
        Assert.False(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/db-1"));
        Assert.Equal(Web, cluster.IpCacheIdentity(NodeA, "10.201.0.12"));

        // web-2 takes the address inside it.
        Move(cluster, "shop/web-2", "10.201.0.10");
        Assert.False(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.True(cluster.Connects("shop/web-2", "shop/db-1"));

        // The policy now covers the /24 but carves web-2 out.
        cluster.Compiler.ApplyPolicy(NetworkPolicy("from-web", "db", ingress: [To([IpBlock("10.201.0.0/24", "10.201.0.10/32")])]));
        cluster.Commit();
        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/db-1"));

        // And then admits both: web is covered whole, and its addresses are web again.
        cluster.Compiler.ApplyPolicy(NetworkPolicy("from-web", "db", ingress: [To([IpBlock("10.201.0.0/24")])]));
        cluster.Commit();
        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.True(cluster.Connects("shop/web-2", "shop/db-1"));
        Assert.DoesNotContain(cluster.Compiler.Snapshot(NodeA).IpCache, e => new NumericIdentity(e.Identity).IsAddressGroup);
    }

    [Fact]
    public void An_address_handed_to_another_identity_in_one_commit_keeps_the_group_its_new_identity_gives_it()
    {
        var cluster = new Cluster(NetworkPolicy("from-web-1", "db", ingress: [To([IpBlock("10.201.0.10/32")])]));
        Assert.True(new NumericIdentity(cluster.IpCacheIdentity(NodeA, "10.201.0.10")).IsAddressGroup);

        // In one commit: api gains an endpoint, then web-1 is relabelled into api, keeping its address.
        cluster.Compiler.RegisterEndpoint(new CompilerEndpoint("shop/api-2", NodeB, "10.201.1.31", "lxc-api2", Api));
        cluster.Compiler.RegisterEndpoint(cluster.Endpoint("shop/web-1") with { Identity = Api });
        cluster.Commit();

        Assert.Equal(Api, new NumericIdentity(cluster.IpCacheIdentity(NodeA, "10.201.0.10")).LabelIdentity.Value);
        Assert.True(cluster.Connects("shop/web-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/api-1", "shop/db-1"));
        Assert.False(cluster.Connects("shop/web-2", "shop/db-1"));
    }

    private static void Move(Cluster cluster, string id, string ip)
    {
        cluster.Compiler.RegisterEndpoint(cluster.Endpoint(id) with { Ip = ip });
        cluster.Commit();
    }
}
