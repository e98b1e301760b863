using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>Longest-prefix policy lookups on real packets: port ranges, wildcards, and the precedence between
/// the peer's lookup and the any-peer lookup, each case named after its line in bpf/lib/policy.h.</summary>
[Trait("Category", "Privileged")]
public sealed class PolicyLookupPrivilegedTests
{
    [Fact]
    public void A_port_range_written_as_one_prefix_allows_the_ports_inside_and_drops_the_next()
    {
        Privileged.Require();
        using var s = Start(8003, 8008);
        // 8000/13 = 8000-8007
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 8000, rule: 3, portBits: 13))));

        Assert.True(s.Net.TcpFromA(8003));
        Assert.False(s.Net.TcpFromA(8008));
        Assert.False(s.Net.TcpFromA(80));
        Assert.Equal("rule-3", s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 8003 }, "allowing 8003").Rule);
    }

    [Fact]
    public void A_protocol_wildcard_allows_every_protocol_and_port_and_a_port_wildcard_only_its_protocol()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, 0, 0, rule: 1))));
        Assert.True(s.Net.TcpFromA(80));
        Assert.True(s.Net.TcpFromA(81));
        Assert.True(s.Net.UdpFromA(54));

        s.Datapath.Apply(Snapshot(2, IngressOfB(Allow(IdentityA, Udp, 0, rule: 2))));
        Assert.True(s.Net.UdpFromA(53));
        Assert.True(s.Net.UdpFromA(54));
        Assert.False(s.Net.TcpFromA(80));
    }

    [Fact]
    public void Deny_wins_even_over_a_longer_allow_of_the_same_peer()
    {
        Privileged.Require();
        using var s = Start();
        // One lookup returns only the longest match: the agent writes the allow on 80 as the deny covering it.
        s.Datapath.Apply(Snapshot(1, IngressOfB(Deny(IdentityA, Tcp, 0, rule: 6), Allow(IdentityA, Tcp, 80, rule: 1), Allow(IdentityA, Udp, 53, rule: 2))));

        Assert.False(s.Net.TcpFromA(80));
        Assert.True(s.Net.UdpFromA(53));
        var drop = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 80 }, "dropping 80");
        Assert.Equal((DropReason.PolicyDenied, "rule-6"), (drop.Reason, drop.Rule));
    }

    [Fact]
    public void Deny_wins_over_an_allow_found_by_the_other_lookup()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1), Deny(0, 0, 0, rule: 7))));

        Assert.False(s.Net.TcpFromA(80));
        var drop = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, DestinationPort: 80 }, "dropping 80");
        Assert.Equal((DropReason.PolicyDenied, "rule-7"), (drop.Reason, drop.Rule));
    }

    [Fact]
    public void Longer_port_protocol_prefix_decides_between_two_allows()
    {
        Privileged.Require();
        using var s = Start();
        // The peer's entry covers every protocol; the any-peer entry names the port, so it is the one reported.
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, 0, 0, rule: 1), Allow(0, Tcp, 80, rule: 2))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.True(s.Net.TcpFromA(81));
        Assert.Equal("rule-2", s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 80 }, "allowing 80").Rule);
        Assert.Equal("rule-1", s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 81 }, "allowing 81").Rule);
    }

    [Fact]
    public void L3_specific_entry_beats_an_l4_only_entry_of_the_same_prefix()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(0, Tcp, 80, rule: 4), Allow(IdentityA, Tcp, 80, rule: 3))));

        Assert.True(s.Net.TcpFromA(80));
        Assert.Equal("rule-3", s.WaitForFlow(f => f is { Verdict: FlowVerdict.Forwarded, Endpoint: "b", DestinationPort: 80 }, "allowing 80").Rule);
    }
}
