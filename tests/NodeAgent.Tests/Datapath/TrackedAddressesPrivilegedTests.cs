using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>What a learned DNS address outlives: the addresses of connections a version judged within a window, read from conntrack.</summary>
[Trait("Category", "Privileged")]
public sealed class TrackedAddressesPrivilegedTests
{
    [Fact]
    public void The_addresses_of_connections_judged_within_the_window_are_read_in_batches_and_leave_once_it_passed()
    {
        Privileged.Require();
        using var s = Start();
        s.Datapath.Apply(Snapshot(1, Strict(egressOfA: [AllowOut(IdentityB, Tcp, 80, rule: 2)], ingressOfB: [Allow(IdentityA, Tcp, 80, rule: 3)])));
        var minute = TimeSpan.FromMinutes(1);
        Assert.Empty(s.Datapath.TrackedAddresses(minute));

        // Two entries per connection: more than one batch of the conntrack map's reads.
        const int connections = 700;
        for (var i = 0; i < connections; i++) Assert.True(s.Net.TcpFromA(80), $"connection {i}");

        Assert.True(s.Datapath.TrackedAddresses(minute).SetEquals([TwoPodTopology.PodA, TwoPodTopology.PodB]));
        var window = TimeSpan.FromMilliseconds(300);
        Thread.Sleep(window + TimeSpan.FromMilliseconds(100));   // past the window: this is the timer under test
        Assert.Empty(s.Datapath.TrackedAddresses(window));
        Assert.NotEmpty(s.Datapath.TrackedAddresses(minute));
    }
}
