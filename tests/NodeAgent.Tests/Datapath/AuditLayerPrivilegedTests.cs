using Mesh.Contracts.Agent;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// Audit layers on real TCP: the enforced policy decides what passes, the audit layer only what the flow says, each
/// case named after its line of the precedence in policy_audit() (bpf/lib/policy.h). Each scenario has its own
/// maps, so the audit counter counts this test's packets only.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class AuditLayerPrivilegedTests
{
    private static IdentityPolicyItem AuditLayerOf(uint identity, bool ingressEnforced, bool egressEnforced, params PolicyEntryItem[] entries) =>
        new(identity | AgentProtocol.AuditLayer, ingressEnforced, egressEnforced, entries);

    [Fact]
    public void An_audit_deny_rule_lets_the_connection_pass_and_reports_audit_with_that_rule_once_per_connection()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1,
            IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1)),
            AuditLayerOf(IdentityB, true, false, Allow(IdentityA, Tcp, 80, rule: 1), Deny(IdentityA, Tcp, 80, rule: 2))));

        Assert.True(s.Net.TcpFromA(80));
        var audit = s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of b:80");
        Assert.Equal((FlowVerdict.Audit, DropReason.PolicyDenied, "rule-2", 1UL, TrafficDirection.Ingress),
            (audit.Verdict, audit.Reason, audit.Rule, audit.Version, audit.Direction));
        Assert.Equal((IdentityA, IdentityB), (audit.SourceIdentity, audit.DestinationIdentity));
        // The handshake's first packet was judged; everything after it passed on conntrack.
        var counters = s.Datapath.ReadCounters();
        Assert.True((counters.AuditPackets, counters.DroppedPackets) == (1, 0) && counters.ForwardedPackets >= 4, counters.ToString());
    }

    [Fact]
    public void An_enforced_audit_direction_without_an_allow_reports_audit_by_default_deny_without_a_rule()
    {
        Privileged.Require();
        using var s = Start();
        // A's egress: not enforced by the policies in force, enforced (and empty) once the ones in audit mode count.
        s.Datapath.Apply(Snapshot(1, new IdentityPolicyItem(IdentityA, false, false, []), AuditLayerOf(IdentityA, false, true)));

        Assert.True(s.Net.TcpFromA(80));
        var audit = s.WaitForFlow(f => f is { Endpoint: "a", DestinationPort: 80 }, "of a to b:80");
        Assert.Equal((FlowVerdict.Audit, DropReason.DefaultDeny, (string?)null, TrafficDirection.Egress),
            (audit.Verdict, audit.Reason, audit.Rule, audit.Direction));
        // A's ingress is not enforced in the audit layer either: B's replies and B's own connections are no audit.
        Assert.Equal(1UL, s.Datapath.ReadCounters().AuditPackets);
    }

    [Fact]
    public void An_enforced_deny_drops_whatever_the_audit_layer_allows()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1,
            IngressOfB(Deny(IdentityA, Tcp, 80, rule: 3)),
            AuditLayerOf(IdentityB, true, false, Allow(IdentityA, Tcp, 80, rule: 4))));

        Assert.False(s.Net.TcpFromA(80));
        var drop = s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of b:80");
        Assert.Equal((FlowVerdict.Dropped, DropReason.PolicyDenied, "rule-3"), (drop.Verdict, drop.Reason, drop.Rule));
        Assert.Equal(0UL, s.Datapath.ReadCounters().AuditPackets);
    }

    [Fact]
    public void An_audit_layer_that_forwards_too_leaves_the_flow_forwarded_by_the_enforced_rule()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1,
            IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1)),
            AuditLayerOf(IdentityB, true, false, Allow(IdentityA, Tcp, 0, rule: 5))));

        Assert.True(s.Net.TcpFromA(80));
        var allowed = s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of b:80");
        Assert.Equal((FlowVerdict.Forwarded, DropReason.None, "rule-1"), (allowed.Verdict, allowed.Reason, allowed.Rule));
        Assert.Equal(0UL, s.Datapath.ReadCounters().AuditPackets);
    }

    [Fact]
    public void Without_an_audit_layer_a_connection_is_forwarded_as_before()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        var allowed = s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of b:80");
        Assert.Equal((FlowVerdict.Forwarded, "rule-1"), (allowed.Verdict, allowed.Rule));
        Assert.Equal(FlowVerdict.Dropped, s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 81 }, "of b:81").Verdict);
        Assert.Equal(0UL, s.Datapath.ReadCounters().AuditPackets);
    }

    [Fact]
    public void Each_version_judges_an_open_connection_by_its_audit_layer_and_a_version_without_it_forwards_again()
    {
        Privileged.Require();
        using var s = Start();
        var enforced = IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1));
        var auditLayer = AuditLayerOf(IdentityB, true, false, Deny(0, Tcp, 0, rule: 2));
        s.Datapath.Apply(Snapshot(1, enforced, auditLayer));
        using var established = s.Net.ConnectFromA(80);
        Assert.NotNull(established);
        Assert.True(TwoPodTopology.RoundTrip(established));
        Assert.Equal(FlowVerdict.Audit, s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of v1").Verdict);
        Assert.Equal(1UL, s.Datapath.ReadCounters().AuditPackets);

        // A new version re-judges the connection's next forward packet, and the audit layer still would drop it.
        s.Datapath.Apply(Snapshot(2, enforced, auditLayer));
        Assert.True(TwoPodTopology.RoundTrip(established));
        Assert.Equal(2UL, s.Datapath.ReadCounters().AuditPackets);

        s.Datapath.Apply(Snapshot(3, enforced));
        Assert.False(s.Datapath.LastApply!.FullRebuild);
        Assert.True(TwoPodTopology.RoundTrip(established));
        Assert.True(s.Net.TcpFromA(80));
        var again = s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80, Version: 3 }, "of v3");
        Assert.Equal((FlowVerdict.Forwarded, DropReason.None, "rule-1"), (again.Verdict, again.Reason, again.Rule));
        Assert.Equal(2UL, s.Datapath.ReadCounters().AuditPackets);
    }
}
