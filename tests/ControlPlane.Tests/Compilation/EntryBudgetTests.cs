using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Compilation;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

public sealed class EntryBudgetTests
{
    private static IncrementalCompiler Cluster(int budget, params NetworkPolicy[] policies)
    {
        var compiler = new IncrementalCompiler(budget);
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        foreach (var p in policies) compiler.ApplyPolicy(p);
        compiler.Commit(1);
        return compiler;
    }

    /// <summary>web → db on <paramref name="ports"/> TCP ports from <paramref name="first"/>: one entry per port.</summary>
    private static NetworkPolicy WebToDb(string name, int ports, int first = 9000) =>
        Policy(name, App("db"), ingress: [Peer(App("web"), Enumerable.Range(first, ports).Select(p => Tcp((ushort)p)).ToArray())]);

    [Fact]
    public void The_default_budget_is_ciliums_policy_map_size() =>
        Assert.Equal(16384, new IncrementalCompiler().EntryBudget);

    [Fact]
    public void A_policy_that_would_overflow_an_identity_names_the_identity_the_count_and_the_rules_that_fill_it()
    {
        var compiler = Cluster(20, WebToDb("base", 5));
        var before = compiler.ContentHash(NodeA);

        var violations = compiler.CheckPolicy(WebToDb("big", 18, first: 10000));

        var v = Assert.Single(violations);
        Assert.Equal(Db, v.Identity);
        Assert.Equal(23, v.Entries);
        Assert.Equal(20, v.Budget);
        Assert.Contains("app=db", v.Labels);
        Assert.Equal(["shop/big ingress[0]", "shop/base ingress[0]"], v.Contributions.Select(c => c.Rule));
        Assert.Equal([18, 5], v.Contributions.Select(c => c.Entries));
        Assert.Contains("any:app=web", v.Contributions[0].Peers);
        Assert.Contains("any:app=db", v.Contributions[0].Selects);
        Assert.Contains("identity 1002", v.ToString());
        // Checking applied nothing.
        Assert.Equal(before, compiler.ContentHash(NodeA));
        Assert.DoesNotContain(compiler.Policies, p => p.Name == "big");
    }

    [Fact]
    public void Replacing_a_policy_counts_only_its_new_version()
    {
        var compiler = Cluster(20, WebToDb("grow", 15));
        Assert.Empty(compiler.CheckPolicy(WebToDb("grow", 20)));
        Assert.Single(compiler.CheckPolicy(WebToDb("grow", 21)));
    }

    [Fact]
    public void A_network_policy_counts_on_top_of_the_cilium_policy_of_its_name_never_as_its_new_version()
    {
        var compiler = Cluster(20, WebToDb("same", 15));

        var v = Assert.Single(compiler.CheckPolicy(WebToDb("same", 6, first: 10000) with { Kind = PolicyKind.KubernetesNetworkPolicy }));

        Assert.Equal(21, v.Entries);
        Assert.Equal(["shop/same ingress[0]", "NetworkPolicy shop/same ingress[0]"], v.Contributions.Select(c => c.Rule));
    }

    [Fact]
    public void A_new_cidr_that_widens_the_world_counts_against_identities_the_policy_does_not_select()
    {
        // web may reach the world on 3 ports; a policy on db naming 10 CIDRs adds 10 node-local identities to
        // node-a, and "world" on node-a now means 11 identities: web's 3 entries become 33.
        var toWorld = Policy("web-to-world", App("web"), egress: [RuleBuilders.To([RuleBuilders.Is(Entity.World)], Tcp(80), Tcp(443), Tcp(8080))]);
        var compiler = Cluster(30, toWorld);
        var cidrs = Enumerable.Range(1, 10).Select(i => RuleBuilders.Cidr($"192.168.{i}.0/24")).ToArray();
        var dbToCidrs = Policy("db-to-cidrs", App("db"), egress: [RuleBuilders.To(cidrs, Tcp(5432))]);

        var v = Assert.Single(compiler.CheckPolicy(dbToCidrs));

        Assert.Equal(Web, v.Identity);
        Assert.Equal(33, v.Entries);
    }

    [Fact]
    public void Pressure_is_entries_over_budget_for_every_local_identity()
    {
        var compiler = Cluster(20, WebToDb("base", 5));

        var pressure = compiler.Pressure();

        var db = Assert.Single(pressure, p => p.Identity == Db);
        Assert.Equal(5, db.Entries);
        Assert.Equal(0.25, db.Pressure);
        Assert.Equal(Db, pressure[0].Identity);   // fullest first
        Assert.Equal(CompilerBuilders.Endpoints.Select(e => e.Identity).Distinct().Order(), pressure.Select(p => p.Identity).Order());
    }
}
