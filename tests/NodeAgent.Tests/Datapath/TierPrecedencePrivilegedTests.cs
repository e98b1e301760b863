using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// Policy tiers (ClusterNetworkPolicy's admin and baseline tiers around the policy tier) on real TCP into B, each
/// case after a line of the precedence in policy_decide() (bpf/lib/policy.h). The flow names the deciding rule.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class TierPrecedencePrivilegedTests
{
    private static PolicyEntryItem Admin(uint peer, byte protocol, ushort port, PolicyVerdict verdict, uint rank, uint rule) =>
        Allow(peer, protocol, port, rule) with { Verdict = verdict, Tier = PolicyTier.Admin, Rank = rank };

    private static PolicyEntryItem Baseline(uint peer, byte protocol, ushort port, PolicyVerdict verdict, uint rank, uint rule) =>
        Allow(peer, protocol, port, rule) with { Verdict = verdict, Tier = PolicyTier.Baseline, Rank = rank };

    /// <summary>B's ingress, not enforced by the policy tier: where the baseline tier applies.</summary>
    private static IdentityPolicyItem UnenforcedIngressOfB(params PolicyEntryItem[] entries) => new(IdentityB, false, false, entries);

    private static FlowEvent FlowTo(DatapathScenario s, int port, ulong version = 1) =>
        s.WaitForFlow(f => f.Endpoint == "b" && f.DestinationPort == port && f.Version == version, $"of b:{port} in v{version}");

    [Fact]
    public void An_admin_deny_drops_what_the_policy_tier_allows()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1), Admin(IdentityA, Tcp, 0, PolicyVerdict.Deny, rank: 1, rule: 2))));

        Assert.False(s.Net.TcpFromA(80));
        var drop = FlowTo(s, 80);
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-2"), (drop.Verdict, drop.Reason, drop.Rule));
    }

    [Fact]
    public void An_admin_accept_forwards_what_a_policy_tier_deny_or_the_default_deny_would_drop()
    {
        Privileged.Require();
        using var s = Start(82);
        s.Datapath.Apply(Snapshot(1, IngressOfB(
            Deny(IdentityA, Tcp, 80, rule: 1),
            Admin(IdentityA, Tcp, 80, PolicyVerdict.Allow, rank: 1, rule: 2),
            Admin(0, Tcp, 81, PolicyVerdict.Allow, rank: 2, rule: 3))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.True(s.Net.TcpFromA(81));
        Assert.False(s.Net.TcpFromA(82));
        Assert.Equal((FlowVerdict.Forwarded, DropReason.None, "rule-2"), FlowTo(s, 80) is var f80 ? (f80.Verdict, f80.Reason, f80.Rule) : default);
        Assert.Equal((FlowVerdict.Forwarded, DropReason.None, "rule-3"), FlowTo(s, 81) is var f81 ? (f81.Verdict, f81.Reason, f81.Rule) : default);
        Assert.Equal((FlowVerdict.Dropped, DropReason.DefaultDeny, (string?)null), FlowTo(s, 82) is var f82 ? (f82.Verdict, f82.Reason, f82.Rule) : default);
    }

    [Fact]
    public void An_admin_pass_before_an_admin_deny_leaves_the_decision_to_the_policy_tier()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(
            Admin(IdentityA, Tcp, 80, PolicyVerdict.Pass, rank: 1, rule: 1),
            Admin(IdentityA, Tcp, 0, PolicyVerdict.Deny, rank: 2, rule: 2),
            Allow(IdentityA, Tcp, 0, rule: 3))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        Assert.Equal((FlowVerdict.Forwarded, "rule-3"), FlowTo(s, 80) is var f80 ? (f80.Verdict, f80.Rule) : default);
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-2"), FlowTo(s, 81) is var f81 ? (f81.Verdict, f81.Reason, f81.Rule) : default);
    }

    [Fact]
    public void Between_the_peer_lookup_and_the_any_peer_lookup_the_earlier_admin_rank_decides_whatever_the_prefix()
    {
        Privileged.Require();
        using var s = Start();
        // A's PASS covers all of TCP; the any-peer DENY is the longer prefix (port 80) and a later rank.
        s.Datapath.Apply(Snapshot(1, IngressOfB(
            Admin(IdentityA, Tcp, 0, PolicyVerdict.Pass, rank: 1, rule: 1),
            Admin(0, Tcp, 80, PolicyVerdict.Deny, rank: 2, rule: 2),
            Allow(IdentityA, Tcp, 80, rule: 3))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        Assert.Equal((FlowVerdict.Forwarded, "rule-3"), FlowTo(s, 80) is var f80 ? (f80.Verdict, f80.Rule) : default);
        Assert.Equal((FlowVerdict.Dropped, DropReason.DefaultDeny), FlowTo(s, 81) is var f81 ? (f81.Verdict, f81.Reason) : default);

        // The same rules in the other order: the any-peer DENY comes first now.
        s.Datapath.Apply(Snapshot(2, IngressOfB(
            Admin(0, Tcp, 80, PolicyVerdict.Deny, rank: 1, rule: 2),
            Admin(IdentityA, Tcp, 0, PolicyVerdict.Pass, rank: 2, rule: 1),
            Allow(IdentityA, Tcp, 80, rule: 3))));

        Assert.False(s.Net.TcpFromA(80));
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-2"), FlowTo(s, 80, version: 2) is var f ? (f.Verdict, f.Reason, f.Rule) : default);
    }

    [Fact]
    public void A_baseline_deny_drops_where_the_policy_tier_does_not_enforce_unless_a_policy_tier_allow_matches()
    {
        Privileged.Require();
        using var s = Start(82);
        s.Datapath.Apply(Snapshot(1, UnenforcedIngressOfB(
            Allow(IdentityA, Tcp, 80, rule: 1),
            Baseline(IdentityA, Tcp, 0, PolicyVerdict.Deny, rank: 1, rule: 2))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        Assert.Equal((FlowVerdict.Forwarded, "rule-1"), FlowTo(s, 80) is var f80 ? (f80.Verdict, f80.Rule) : default);
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-2"), FlowTo(s, 81) is var f81 ? (f81.Verdict, f81.Reason, f81.Rule) : default);

        // Without the baseline rule nothing decides 81, and the direction is not enforced.
        s.Datapath.Apply(Snapshot(2, UnenforcedIngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        Assert.True(s.Net.TcpFromA(81));
        Assert.Equal((FlowVerdict.Forwarded, (string?)null), FlowTo(s, 81, version: 2) is var again ? (again.Verdict, again.Rule) : default);
    }

    [Fact]
    public void Baseline_rules_are_first_match_by_rank_across_both_lookups_not_deny_wins()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, UnenforcedIngressOfB(
            Baseline(IdentityA, Tcp, 81, PolicyVerdict.Allow, rank: 1, rule: 1),
            Baseline(0, Tcp, 0, PolicyVerdict.Deny, rank: 2, rule: 2))));

        Assert.True(s.Net.TcpFromA(81));
        Assert.False(s.Net.TcpFromA(80));
        Assert.Equal((FlowVerdict.Forwarded, "rule-1"), FlowTo(s, 81) is var f81 ? (f81.Verdict, f81.Rule) : default);
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-2"), FlowTo(s, 80) is var f80 ? (f80.Verdict, f80.Reason, f80.Rule) : default);
    }

    [Fact]
    public void An_audit_layer_is_decided_by_the_same_tiers()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1,
            IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1)),
            new IdentityPolicyItem(IdentityB | AgentProtocol.AuditLayer, true, false,
                [Allow(IdentityA, Tcp, 80, rule: 1), Admin(0, Tcp, 0, PolicyVerdict.Deny, rank: 1, rule: 4)])));

        Assert.True(s.Net.TcpFromA(80));
        var audit = FlowTo(s, 80);
        Assert.Equal((FlowVerdict.Audit, DropReason.PolicyDenied, "rule-4"), (audit.Verdict, audit.Reason, audit.Rule));
    }

    [Fact]
    public void A_snapshot_with_tiers_that_make_no_sense_is_refused_and_the_previous_version_keeps_enforcing()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));

        foreach (var (entries, message) in new (PolicyEntryItem[], string)[]
        {
            ([Deny(IdentityA, Tcp, 80, rule: 1) with { Verdict = PolicyVerdict.Pass }], "PASS belongs to the admin tier, not the policy tier"),
            ([Baseline(IdentityA, Tcp, 80, PolicyVerdict.Pass, rank: 1, rule: 1)], "PASS belongs to the admin tier, not the baseline tier"),
            ([Admin(IdentityA, Tcp, 80, PolicyVerdict.Deny, rank: 0, rule: 1)], "rank 0 in the admin tier is outside 1-65535"),
            ([Baseline(IdentityA, Tcp, 80, PolicyVerdict.Deny, rank: 65536, rule: 1)], "rank 65536 in the baseline tier is outside 1-65535"),
            ([Allow(IdentityA, Tcp, 80, rule: 1) with { Rank = 3 }], "rank 3 in the policy tier"),
            ([Allow(IdentityA, Tcp, 80, rule: 1) with { Tier = (PolicyTier)7 }], "tier 7 is unknown"),
            ([Admin(IdentityA, Tcp, 80, PolicyVerdict.Deny, rank: 2, rule: 1), Admin(0, Tcp, 0, PolicyVerdict.Allow, rank: 2, rule: 1)],
                "admin rank 2 holds Deny of rule 1 and Allow of rule 1: one rank is one rule"),
        })
        {
            var refused = Assert.Throws<DatapathException>(() => s.Datapath.Apply(Snapshot(2, IngressOfB(entries))));
            Assert.Contains($"identity {IdentityB}: {message}", refused.Message);
        }

        Assert.Equal(1UL, s.Datapath.AppliedVersion);
        Assert.True(s.Net.TcpFromA(80));
    }
}
