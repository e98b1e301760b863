using Mesh.NodeAgent.Datapath;
using Mesh.NodeAgent.Datapath.Interop;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>The real datapath on real veths: pods A and B in their own namespaces, the programs on the node side.</summary>
[Trait("Category", "Privileged")]
public sealed class DatapathPrivilegedTests
{
    [Fact]
    public void Interfaces_without_endpoint_entries_pass_everything()
    {
        Privileged.Require();
        using var s = Start();
        Assert.True(s.Net.TcpFromA(80), "before any apply");

        s.Datapath.Apply(Snapshot(1, IngressOfB()));
        Assert.False(s.Net.TcpFromA(80), "B's ingress is enforced with no entries");

        // The programs stay attached, but no interface is an endpoint of version 2.
        s.Datapath.Apply(Snapshot(2, [], IngressOfB()));
        Assert.True(s.Net.TcpFromA(80));
        Assert.True(s.Net.UdpFromA(53));
    }

    [Fact]
    public void Tcp_from_a_to_b_80_is_allowed_with_its_replies_and_81_times_out()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, Strict(
            egressOfA: [AllowOut(IdentityB, Tcp, 80, rule: 2), AllowOut(IdentityB, Tcp, 81, rule: 2)],
            ingressOfB: [Allow(IdentityA, Tcp, 80, rule: 3)])));

        // The echo proves the replies pass: B's egress and A's ingress allow nothing, only conntrack lets them by.
        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        Assert.False(s.Net.UdpFromA(53));
        var drop = s.WaitForFlow(f => f.Verdict == FlowVerdict.Dropped, "dropping 81");
        Assert.Equal(("b", TrafficDirection.Ingress, (ushort)81), (drop.Endpoint, drop.Direction, drop.DestinationPort));
    }

    [Fact]
    public void Udp_to_an_allowed_port_gets_its_reply_and_other_udp_ports_are_dropped()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, Strict(
            egressOfA: [AllowOut(0, Udp, 0, rule: 1), AllowOut(0, Tcp, 0, rule: 1)],
            ingressOfB: [Allow(IdentityA, Udp, 53, rule: 0)])));

        Assert.True(s.Net.UdpFromA(53));
        Assert.False(s.Net.UdpFromA(54));
        Assert.False(s.Net.TcpFromA(80));
    }

    [Fact]
    public void Detaching_an_interface_stops_enforcement_on_it()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB()));
        Assert.False(s.Net.TcpFromA(80));

        s.Datapath.Detach(TwoPodTopology.HostSideB);

        Assert.True(s.Net.TcpFromA(80));
    }

    [Fact]
    public void Deny_beats_allow_even_when_the_allow_is_more_specific()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(
            Allow(IdentityA, Tcp, 80, rule: 1),
            Allow(IdentityA, Tcp, 81, rule: 1),
            Deny(0, Tcp, 80, rule: 2))));

        Assert.False(s.Net.TcpFromA(80));
        Assert.True(s.Net.TcpFromA(81));
        var drop = s.WaitForFlow(f => f.Verdict == FlowVerdict.Dropped && f.DestinationPort == 80, "dropping port 80");
        Assert.Equal(DropReason.PolicyDenied, drop.Reason);
        Assert.Equal("rule-2", drop.Rule);
    }

    [Fact]
    public void An_l4_only_entry_allows_every_peer_on_that_port()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(0, Tcp, 80, rule: 5))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        var allowed = s.WaitForFlow(f => f.Verdict == FlowVerdict.Forwarded && f.Endpoint == "b", "forwarding into b");
        Assert.Equal("rule-5", allowed.Rule);
    }

    [Fact]
    public void An_enforced_direction_without_entries_denies_by_default()
    {
        Privileged.Require();
        using var s = Start();
        // A's egress enforced and empty; B not selected at all.
        s.Datapath.Apply(Snapshot(1, new IdentityPolicyItem(IdentityA, false, true, [])));

        Assert.False(s.Net.TcpFromA(80));
        Assert.False(s.Net.UdpFromA(53));
        var drop = s.WaitForFlow(f => f.Verdict == FlowVerdict.Dropped && f.Protocol == Tcp, "dropping tcp");
        Assert.Equal(("a", TrafficDirection.Egress, DropReason.DefaultDeny), (drop.Endpoint, drop.Direction, drop.Reason));
        Assert.Null(drop.Rule);
    }

    [Fact]
    public void Flows_carry_the_version_verdict_identities_and_rule()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(7, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 4))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));

        var allowed = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 80 }, "allowing b:80");
        Assert.Equal((7UL, TrafficDirection.Ingress, IdentityA, IdentityB, "rule-4"),
            (allowed.Version, allowed.Direction, allowed.SourceIdentity, allowed.DestinationIdentity, allowed.Rule));
        Assert.Equal((TwoPodTopology.PodA, TwoPodTopology.PodB, Tcp), (allowed.Source, allowed.Destination, allowed.Protocol));
        Assert.InRange(allowed.Time, DateTimeOffset.UtcNow.AddSeconds(-10), DateTimeOffset.UtcNow.AddSeconds(1));

        var dropped = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 81 }, "dropping b:81");
        Assert.Equal((7UL, DropReason.DefaultDeny, (string?)null, "b"), (dropped.Version, dropped.Reason, dropped.Rule, dropped.Endpoint));

        var counters = s.Datapath.ReadCounters();
        Assert.True(counters.DroppedPackets >= 1 && counters.ForwardedPackets >= 4, counters.ToString());
    }

    [Fact]
    public void A_new_version_flips_atomically_and_cuts_new_packets_of_connections_it_no_longer_allows()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        using var established = s.Net.ConnectFromA(80);
        Assert.NotNull(established);
        Assert.True(TwoPodTopology.RoundTrip(established));
        Assert.Equal(1UL, s.WaitForFlow(f => f is { Endpoint: "b", DestinationPort: 80 }, "of v1").Version);

        s.Datapath.Apply(Snapshot(2, IngressOfB(Allow(IdentityA, Tcp, 81, rule: 2))));

        Assert.Equal(2UL, s.Datapath.AppliedVersion);
        Assert.True(s.Net.TcpFromA(81));
        Assert.False(s.Net.TcpFromA(80));
        Assert.False(TwoPodTopology.RoundTrip(established), "forward packets are judged by the new version");
        var drop = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 80 }, "dropping 80 under v2");
        Assert.Equal(2UL, drop.Version);
        var allow = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 81 }, "allowing 81 under v2");
        Assert.Equal((2UL, "rule-2"), (allow.Version, allow.Rule));
        // The flip waited out in-flight programs through the RCU grace period, not the fallback sleep. (Only this
        // message is asserted: libbpf's own log is process-wide and may carry lines of tests running alongside.)
        Assert.DoesNotContain(s.Log, line => line.Contains("waiting instead", StringComparison.Ordinal));
    }

    [Fact]
    public void An_open_connection_passes_each_version_that_still_allows_it_and_stops_at_the_first_that_does_not()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        using var established = s.Net.ConnectFromA(80);
        Assert.NotNull(established);
        Assert.True(TwoPodTopology.RoundTrip(established));

        // Conntrack remembers which version allowed the connection; each new version judges it afresh.
        s.Datapath.Apply(Snapshot(2, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 2), Allow(IdentityA, Tcp, 81, rule: 3))));
        Assert.True(TwoPodTopology.RoundTrip(established), "v2 allows 80 too");
        Assert.True(TwoPodTopology.RoundTrip(established), "and keeps allowing it");

        s.Datapath.Apply(Snapshot(3, IngressOfB(Allow(IdentityA, Tcp, 81, rule: 3))));
        Assert.False(TwoPodTopology.RoundTrip(established), "v3 no longer allows 80");
        var drop = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 80 }, "dropping 80 under v3");
        Assert.Equal(3UL, drop.Version);
    }

    [Fact]
    public void A_failed_apply_throws_and_the_previous_version_keeps_enforcing()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));

        var shared = Assert.Throws<DatapathException>(() => s.Datapath.Apply(
            Snapshot(2, [EndpointA, EndpointB, new EndpointItem("b-twin", TwoPodTopology.HostSideB, 1003)], IngressOfB())));
        Assert.Contains($"interface {TwoPodTopology.HostSideB} belongs to several endpoints", shared.Message);

        var tooMany = Bystanders((int)DatapathMaps.PolicyEntriesPerIdentity + 1);
        var full = Assert.Throws<DatapathException>(() => s.Datapath.Apply(Snapshot(3, IngressOfB(tooMany))));
        Assert.Contains("mesh_policy", full.Message);

        var unaligned = Assert.Throws<DatapathException>(() => s.Datapath.Apply(Snapshot(3, IngressOfB(Allow(IdentityA, Tcp, 8003, rule: 1, portBits: 13)))));
        Assert.Contains("past its prefix", unaligned.Message);

        var older = Assert.Throws<DatapathException>(() => s.Datapath.Apply(Snapshot(0, IngressOfB())));
        Assert.Contains("older", older.Message);

        Assert.Equal(1UL, s.Datapath.AppliedVersion);
        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));
        Assert.Equal(1UL, s.WaitForFlow(f => f.Verdict == FlowVerdict.Dropped, "dropping 81").Version);
    }

    [Fact]
    public void After_an_agent_restart_the_kernel_keeps_enforcing_without_a_new_apply_and_a_new_apply_works()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(4, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        using var established = s.Net.ConnectFromA(80);
        Assert.NotNull(established);

        s.Datapath.Dispose();   // no agent: the pinned maps and attached programs go on alone
        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));

        s.Restart();
        Assert.Equal(4UL, s.Datapath.AppliedVersion);
        Assert.True(TwoPodTopology.RoundTrip(established), "connections survive the restart");
        Assert.False(s.Net.TcpFromA(81));

        s.Datapath.Apply(Snapshot(5, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1), Allow(IdentityA, Tcp, 81, rule: 2))));
        Assert.True(s.Net.TcpFromA(81));
        Assert.Equal(5UL, s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 81 }, "allowing 81").Version);
    }
}
