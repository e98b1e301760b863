using System.Net;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// An endpoint whose interface is missing from the node never holds the node back: the version is enforced for every
/// other endpoint, the missing one is reported, and applying the version again once its interface exists enforces it.
/// Pod C is that endpoint; its interface comes and goes while A and B keep talking.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class MissingInterfacePrivilegedTests
{
    private const uint IdentityC = 1003;
    private static readonly EndpointItem EndpointC = new("c", TwoPodTopology.HostSideC, IdentityC);
    private static readonly EndpointItem[] All = [EndpointA, EndpointB, EndpointC];

    /// <summary>B takes A on 81 and C on 80 and 81; C may send to B on 81 only. So once C is enforced, C to B:80 is
    /// dropped by C's own egress, which is what tells an enforced C from one without programs.</summary>
    private static DatapathSnapshot WithC(ulong version) =>
        Snapshot(version, All,
            IngressOfB(Allow(IdentityA, Tcp, 81, rule: 1), Allow(IdentityC, Tcp, 80, rule: 2), Allow(IdentityC, Tcp, 81, rule: 2)),
            new IdentityPolicyItem(IdentityC, false, true, [AllowOut(IdentityB, Tcp, 81, rule: 3)]))
        with
        {
            IpCache = [.. Snapshot(version).IpCache, new IpCacheItem(new IPNetwork(TwoPodTopology.PodC, 32), IdentityC)],
        };

    [Fact]
    public void A_version_naming_an_endpoint_without_interface_is_enforced_for_the_others_and_for_it_once_its_interface_appears()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, IngressOfB(Allow(IdentityA, Tcp, 80, rule: 1))));
        Assert.True(s.Net.TcpFromA(80));
        Assert.False(s.Net.TcpFromA(81));

        var waiting = s.Datapath.Apply(WithC(2));

        var c = Assert.Single(waiting);
        Assert.Equal(("c", TwoPodTopology.HostSideC), (c.Id, c.InterfaceName));
        Assert.Contains($"interface {TwoPodTopology.HostSideC} not found in network namespace {s.Net.Node}", c.Reason);
        Assert.Equal(2UL, s.Datapath.AppliedVersion);
        Assert.True(s.Net.TcpFromA(81), "A and B follow v2: 81 is allowed");
        Assert.False(s.Net.TcpFromA(80), "A and B follow v2: 80 is dropped");

        // C's pod is wired up; until the version is applied again nothing enforces C's own egress.
        s.Net.WireC();
        Assert.True(s.Net.TcpFromC(80), "C's network works, and C is not enforced yet");

        Assert.Empty(s.Datapath.Apply(WithC(2)));

        Assert.False(s.Net.TcpFromC(80), "C's egress allows 81 only");
        Assert.True(s.Net.TcpFromC(81));
        Assert.True(s.Net.TcpFromA(81));
        var drop = s.WaitForFlow(f => f is { Verdict: FlowVerdict.Dropped, Endpoint: "c", DestinationPort: 80 }, "dropping C to B:80");
        Assert.Equal((2UL, TrafficDirection.Egress, DropReason.DefaultDeny), (drop.Version, drop.Direction, drop.Reason));
    }

    [Fact]
    public void An_interface_that_goes_away_and_comes_back_under_its_old_ifindex_gets_the_programs_again()
    {
        Privileged.Require();
        using var s = Start();
        const int ifindex = 4242;
        s.Net.WireC(ifindex);
        Assert.Empty(s.Datapath.Apply(WithC(1)));
        Assert.False(s.Net.TcpFromC(80));

        // The pod goes, the endpoint stays: its programs went with the interface, and the node says so.
        s.Net.UnwireC();
        Assert.Equal("c", Assert.Single(s.Datapath.Apply(WithC(1))).Id);
        Assert.True(s.Net.TcpFromA(81), "A and B keep their policy");

        // The same name at the same ifindex is still a new interface, without programs.
        s.Net.WireC(ifindex);
        Assert.True(s.Net.TcpFromC(80), "nothing is attached to the new interface yet");
        Assert.Empty(s.Datapath.Apply(WithC(2)));

        Assert.False(s.Net.TcpFromC(80), "C's egress is enforced on the new interface");
        Assert.True(s.Net.TcpFromC(81));
    }
}
