using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;
using static Mesh.ControlPlane.Tests.Compilation.RuleBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>A node learns the node-local identity of each toFQDNs selector its policies name: in snapshots, deltas and the hash.</summary>
public sealed class FqdnSelectorCompilerTests
{
    private static readonly DnsMatch Api = new("api.example.com", null);
    private static readonly DnsMatch AnyExample = new(null, "*.example.com");

    private static PeerSelector Pattern(string pattern) => new PeerSelector.Fqdn(new DnsMatch(null, pattern));

    private static NetworkPolicy Egress(string name, params PeerSelector[] peers) =>
        Policy(name, App("db"), egress: [To(peers, Tcp(443))]);

    [Fact]
    public void Each_selector_comes_with_the_identity_its_entries_allow()
    {
        var snapshot = CompileNodeA(Egress("out", Pattern("*.example.com"), Fqdn("api.example.com"), Cidr("192.0.2.0/24")));

        // CIDRs are numbered first, then patterns, then names: each match gets an identity of its own.
        Assert.Equal([new FqdnSelector(Local2, AnyExample), new FqdnSelector(Local3, Api)], snapshot.Fqdns);
        Assert.Equal(
            ["egress peer=local1 TCP/443 allow shop/out egress[0]", "egress peer=local2 TCP/443 allow shop/out egress[0]",
             "egress peer=local3 TCP/443 allow shop/out egress[0]"],
            Render(snapshot, Db));
        Assert.Contains(snapshot.IpCache, e => e is { Cidr: "192.0.2.0/24", Identity: Local1 });

        var wire = snapshot.ToProto().Fqdns;
        Assert.Equal([(Local2, false, true, "*.example.com"), (Local3, true, false, "api.example.com")],
            wire.Select(f => (f.Identity, f.HasMatchName, f.HasMatchPattern, f.HasMatchName ? f.MatchName : f.MatchPattern)));
    }

    [Fact]
    public void A_node_whose_endpoints_no_toFQDNs_policy_selects_has_no_selectors()
    {
        var snapshot = PolicyCompiler.Compile(NodeB, 1, [Egress("out", Fqdn("api.example.com"))], CompilerBuilders.Identities, CompilerBuilders.Endpoints);

        Assert.Empty(snapshot.Fqdns);
    }

    [Fact]
    public void The_content_hash_covers_the_selectors()
    {
        // The same entries, rule and ipcache: only the name behind local1 differs.
        var api = CompileNodeA(Egress("out", Fqdn("api.example.com")));
        var www = CompileNodeA(Egress("out", Fqdn("www.example.com")));
        var pattern = CompileNodeA(Egress("out", Pattern("api.example.com")));

        Assert.Equal(Render(api, Db), Render(www, Db));
        Assert.Equal(api.IpCache, www.IpCache);
        Assert.Equal(3, new[] { api.ContentHash, www.ContentHash, pattern.ContentHash }.Distinct().Count());
        Assert.Equal(api.ContentHash, NodeSnapshot.Hash(api.Node, api.IpCache, api.Fqdns, api.Endpoints, api.Policies, api.Rules));
    }

    [Fact]
    public void Adding_and_removing_toFQDNs_rules_is_a_delta_of_the_selectors()
    {
        var compiler = Compiler();
        compiler.ApplyPolicy(Egress("out", Fqdn("api.example.com")));
        compiler.Commit(1);
        var v1 = compiler.Snapshot(NodeA);
        Assert.Equal([new FqdnSelector(Local1, Api)], v1.Fqdns);

        // A CIDR and a pattern sort before every name: api.example.com is renumbered.
        compiler.ApplyPolicy(Egress("out", Fqdn("api.example.com"), Pattern("*.example.com"), Cidr("192.0.2.0/24")));
        compiler.Commit(2);
        var v2 = compiler.Snapshot(NodeA);
        var delta = compiler.DeltaOf(NodeA);
        Assert.Equal([new FqdnSelector(Local1, Api)], delta.FqdnsRemoved);
        Assert.Equal([new FqdnSelector(Local2, AnyExample), new FqdnSelector(Local3, Api)], delta.FqdnsAdded);
        Assert.Equal(v2.Fqdns, delta.ApplyTo(v1).Fqdns);
        Assert.Equal(v2.ContentHash, delta.ApplyTo(v1).ContentHash);
        Assert.Equal(PolicyCompiler.Compile(NodeA, 2, [Egress("out", Fqdn("api.example.com"), Pattern("*.example.com"), Cidr("192.0.2.0/24"))],
            CompilerBuilders.Identities, CompilerBuilders.Endpoints).ContentHash, v2.ContentHash);

        compiler.DeletePolicy(PolicyKind.CiliumNetworkPolicy, "shop", "out");
        compiler.Commit(3);
        var gone = compiler.DeltaOf(NodeA);
        Assert.Equal(v2.Fqdns, gone.FqdnsRemoved);
        Assert.Empty(gone.FqdnsAdded);
        Assert.Empty(compiler.Snapshot(NodeA).Fqdns);
        Assert.Equal(compiler.ContentHash(NodeA), gone.ApplyTo(v2).ContentHash);
    }

    [Fact]
    public void A_change_elsewhere_on_the_node_leaves_the_selectors_out_of_the_delta()
    {
        var compiler = Compiler();
        compiler.ApplyPolicy(Egress("out", Fqdn("api.example.com")));
        compiler.Commit(1);

        compiler.ApplyPolicy(Policy("in", App("db"), ingress: [Peer(App("web"), Tcp(5432))]));
        compiler.Commit(2);

        var delta = compiler.DeltaOf(NodeA);
        Assert.NotEmpty(delta.EntriesAdded);
        Assert.Empty(delta.FqdnsAdded);
        Assert.Empty(delta.FqdnsRemoved);
        Assert.Equal([new FqdnSelector(Local1, Api)], compiler.Snapshot(NodeA).Fqdns);
    }

    private static IncrementalCompiler Compiler()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        return compiler;
    }
}
