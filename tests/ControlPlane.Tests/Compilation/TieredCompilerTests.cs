using Mesh.ControlPlane.Audit;
using Mesh.ControlPlane.Compilation;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using static Mesh.ControlPlane.Tests.Compilation.CompilerBuilders;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>
/// ClusterNetworkPolicy tiers in the compiler and in the lookup that mirrors the kernel: the admin tier's first
/// matching rule, then the policy tier, then the baseline tier for directions the policy tier does not enforce.
/// </summary>
public sealed class TieredCompilerTests
{
    private static readonly LabelSelector Shop = LabelSelector.Of(new Dictionary<string, string> { ["k8s:io.kubernetes.pod.namespace"] = "shop" });
    private static readonly NetworkPolicy AllowApiToWeb = Policy("web-in", App("web"), ingress: [Peer(App("api"), Tcp(80))]);

    private static LookupDecision WebIngressFrom(NodeSnapshot snapshot, uint peer, ushort port = 80) =>
        SnapshotLookup.Decide(snapshot, Web, Direction.Ingress, peer, Protocol.Tcp, port);

    [Fact]
    public void An_admin_deny_beats_a_policy_allow_and_names_its_rule()
    {
        var deny = Tiered("no-api", PolicyTier.Admin, 10, App("web"), ingress: [Action(RuleAction.Deny, App("api"))]);
        var snapshot = CompileNodeA(AllowApiToWeb, deny);
        Assert.Contains("admin ingress peer=api any/* deny#1 ClusterNetworkPolicy no-api ingress[0]", Render(snapshot, Web));
        Assert.Contains("ingress peer=api TCP/80 allow shop/web-in ingress[0]", Render(snapshot, Web));
        var decision = WebIngressFrom(snapshot, Api);
        Assert.Equal(LookupOutcome.Denied, decision.Outcome);
        Assert.Equal("ClusterNetworkPolicy no-api ingress[0]", snapshot.Rules[(int)decision.Entry!.RuleIndex]);
    }

    [Fact]
    public void An_admin_accept_beats_a_policy_deny_and_a_default_deny()
    {
        var lockdown = Policy("lockdown", App("web"), ingress: [Nothing], ingressDeny: [Peer(App("api"))]);
        var accept = Tiered("ops", PolicyTier.Admin, 0, App("web"), ingress: [Action(RuleAction.Accept, App("api"), Tcp(80))]);
        var snapshot = CompileNodeA(lockdown, accept);
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(snapshot, Api).Outcome);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(snapshot, Api, 81).Outcome);
        Assert.Equal(LookupOutcome.DefaultDenied, WebIngressFrom(snapshot, Db).Outcome);
    }

    [Fact]
    public void Admin_policies_go_by_priority_then_name_and_their_rules_in_order()
    {
        // "late" comes first by name among priority 5, "first" by priority: its Accept of api decides before the denies.
        var first = Tiered("z-first", PolicyTier.Admin, 1, App("web"), ingress: [Action(RuleAction.Accept, App("api"))]);
        var late = Tiered("late", PolicyTier.Admin, 5, App("web"), ingress: [Action(RuleAction.Deny, Shop), Action(RuleAction.Accept, App("db"))]);
        var later = Tiered("later", PolicyTier.Admin, 5, App("web"), ingress: [Action(RuleAction.Accept, Shop)]);
        var snapshot = CompileNodeA(later, late, first);
        var lines = Render(snapshot, Web);
        Assert.Contains("admin ingress peer=api any/* allow#1 ClusterNetworkPolicy z-first ingress[0]", lines);
        Assert.Contains("admin ingress peer=db any/* deny#2 ClusterNetworkPolicy late ingress[0]", lines);
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(snapshot, Api).Outcome);
        // late's Deny of the namespace (rank 2) comes before its own Accept of db (rank 3) and later's Accept (rank 4).
        var db = WebIngressFrom(snapshot, Db);
        Assert.Equal(LookupOutcome.Denied, db.Outcome);
        Assert.Equal(2, db.Entry!.Rank);
    }

    [Fact]
    public void An_admin_pass_leaves_the_packet_to_the_policy_tier()
    {
        var pass = Tiered("pass-api", PolicyTier.Admin, 1, App("web"),
            ingress: [Action(RuleAction.Pass, App("api")), Action(RuleAction.Deny, Shop)]);
        var alone = CompileNodeA(pass);
        Assert.Equal(LookupOutcome.NotEnforced, WebIngressFrom(alone, Api).Outcome);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(alone, Db).Outcome);
        Assert.False(alone.PolicyOf(Web)!.IngressEnforced);

        var withPolicy = CompileNodeA(pass, Policy("web-in", App("web"), ingress: [Peer(App("api"), Tcp(80))]));
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(withPolicy, Api).Outcome);
        Assert.Equal(LookupOutcome.DefaultDenied, WebIngressFrom(withPolicy, Api, 81).Outcome);
    }

    [Fact]
    public void The_baseline_tier_decides_only_directions_the_policy_tier_does_not_enforce()
    {
        var baseline = Tiered("default-deny", PolicyTier.Baseline, 0, App("web"),
            ingress: [Action(RuleAction.Accept, App("db")), Action(RuleAction.Deny, null)]);
        var alone = CompileNodeA(baseline);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(alone, Api).Outcome);
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(alone, Db).Outcome);
        Assert.Contains("baseline ingress peer=any any/* deny#2 ClusterNetworkPolicy default-deny ingress[1]", Render(alone, Web));

        // A policy enforcing web's ingress decides it whole: no baseline entry is left, db is default-denied.
        var enforced = CompileNodeA(baseline, AllowApiToWeb);
        Assert.DoesNotContain(Render(enforced, Web), line => line.StartsWith("baseline", StringComparison.Ordinal));
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(enforced, Api).Outcome);
        Assert.Equal(LookupOutcome.DefaultDenied, WebIngressFrom(enforced, Db).Outcome);

        // A policy enforcing only egress leaves ingress to the baseline.
        var egressOnly = CompileNodeA(baseline, Policy("web-out", App("web"), egress: [Peer(App("db"))]));
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(egressOnly, Api).Outcome);
    }

    [Fact]
    public void A_policy_tier_rule_in_a_direction_it_does_not_enforce_comes_before_the_baseline()
    {
        var baseline = Tiered("deny-all", PolicyTier.Baseline, 0, App("web"), ingress: [Action(RuleAction.Deny, null)]);
        var allowOnly = Policy("allow-api", App("web"), ingress: [Peer(App("api"))]) is var p
            ? p with { Specs = [p.Spec with { EnableDefaultDeny = new(false, null) }] }
            : throw new InvalidOperationException();
        var snapshot = CompileNodeA(baseline, allowOnly);
        Assert.Equal(LookupOutcome.Allowed, WebIngressFrom(snapshot, Api).Outcome);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(snapshot, Db).Outcome);
    }

    [Fact]
    public void A_baseline_pass_lets_the_packet_through_and_skips_later_baseline_rules()
    {
        var baseline = Tiered("b", PolicyTier.Baseline, 0, App("web"), ingress: [Action(RuleAction.Pass, App("api")), Action(RuleAction.Deny, null)]);
        var snapshot = CompileNodeA(baseline);
        var api = WebIngressFrom(snapshot, Api);
        Assert.Equal(LookupOutcome.Allowed, api.Outcome);
        Assert.Equal(Verdict.Allow, api.Entry!.Verdict);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(snapshot, Db).Outcome);
    }

    [Fact]
    public void Ranks_are_distinct_across_directions_and_tiers_count_their_own()
    {
        var admin = Tiered("a", PolicyTier.Admin, 0, App("web"),
            ingress: [Action(RuleAction.Deny, App("db")), Action(RuleAction.Accept, App("api"))], egress: [Action(RuleAction.Deny, App("db"))]);
        var baseline = Tiered("b", PolicyTier.Baseline, 0, App("web"), egress: [Action(RuleAction.Deny, null)]);
        var entries = CompileNodeA(admin, baseline).PolicyOf(Web)!.Entries;
        Assert.Equal([1, 2, 3], entries.Where(e => e.Tier == PolicyTier.Admin).Select(e => (int)e.Rank).Order());
        Assert.Equal(3, entries.Single(e => e.Tier == PolicyTier.Admin && e.Direction == Direction.Egress).Rank);
        Assert.Equal(1, entries.Single(e => e.Tier == PolicyTier.Baseline).Rank);
    }

    [Fact]
    public void Nothing_is_enforced_under_never_and_always_leaves_no_direction_to_the_baseline()
    {
        var admin = Tiered("a", PolicyTier.Admin, 0, App("web"), ingress: [Action(RuleAction.Deny, App("api"))]);
        var baseline = Tiered("b", PolicyTier.Baseline, 0, App("web"), ingress: [Action(RuleAction.Accept, App("db"))]);
        var never = PolicyCompiler.Compile(NodeA, 1, [admin, baseline], CompilerBuilders.Identities, CompilerBuilders.Endpoints, null, EnforcementMode.Never);
        Assert.Empty(never.PolicyOf(Web)!.Entries);
        var always = PolicyCompiler.Compile(NodeA, 1, [admin, baseline], CompilerBuilders.Identities, CompilerBuilders.Endpoints, null, EnforcementMode.Always);
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(always, Api).Outcome);
        Assert.Equal(LookupOutcome.DefaultDenied, WebIngressFrom(always, Db).Outcome);
    }

    [Fact]
    public void More_rules_of_one_tier_than_the_datapath_can_rank_are_refused_before_anything_compiles()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.Commit(1);
        var huge = Tiered("huge", PolicyTier.Admin, 0, App("web"), ingress: [.. Enumerable.Repeat(Action(RuleAction.Deny, App("api")), ushort.MaxValue + 1)]);
        // A cluster-wide policy: app=web of both namespaces.
        var violations = compiler.CheckPolicy(huge);
        Assert.Equal([Web, OtherWeb], violations.Select(v => v.Identity));
        var violation = violations[0];
        Assert.Equal((ushort.MaxValue + 1, (int)ushort.MaxValue), (violation.Entries, violation.Budget));
        Assert.Contains("the admin tier's rules", violation.ToString());
        Assert.Empty(compiler.CheckPolicy(huge with { Specs = [huge.Spec with { Ingress = huge.Spec.Ingress.Take(25).ToList() }] }));
    }

    [Fact]
    public void The_incremental_compiler_and_its_deltas_follow_the_reference_as_tiered_policies_come_and_go()
    {
        var compiler = new IncrementalCompiler();
        foreach (var (id, labels) in CompilerBuilders.Identities) compiler.AllocateIdentity(id, labels);
        foreach (var e in CompilerBuilders.Endpoints) compiler.RegisterEndpoint(e);
        compiler.ApplyPolicy(AllowApiToWeb);
        compiler.Commit(1);
        var previous = compiler.Snapshot(NodeA);
        var applied = new List<NetworkPolicy> { AllowApiToWeb };
        var version = 1;
        var steps = new[]
        {
            Tiered("a", PolicyTier.Admin, 5, App("web"), ingress: [Action(RuleAction.Deny, App("api"))]),
            Tiered("b", PolicyTier.Admin, 1, App("web"), ingress: [Action(RuleAction.Pass, App("api"))]),
            Tiered("c", PolicyTier.Baseline, 0, App("db"), ingress: [Action(RuleAction.Deny, null)], egress: [Action(RuleAction.Accept, App("web"))]),
            Tiered("b", PolicyTier.Admin, 9, App("web"), ingress: [Action(RuleAction.Pass, App("api"))]),
        };
        foreach (var step in steps)
        {
            compiler.ApplyPolicy(step);
            applied.RemoveAll(p => p.Reference == step.Reference);
            applied.Add(step);
            compiler.Commit(++version);
            var incremental = compiler.Snapshot(NodeA);
            Assert.Equal(CompileNodeA([.. applied]).ContentHash, incremental.ContentHash);
            Assert.Equal(incremental.ContentHash, compiler.DeltaOf(NodeA).ApplyTo(previous).ContentHash);
            previous = incremental;
        }
        // b now after a: a's Deny decides api.
        Assert.Equal(LookupOutcome.Denied, WebIngressFrom(previous, Api).Outcome);
    }
}
