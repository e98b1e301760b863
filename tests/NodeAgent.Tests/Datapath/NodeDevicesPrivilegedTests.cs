using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Datapath;
using Mesh.Testing;
using static Mesh.NodeAgent.Tests.Datapath.DatapathScenario;

namespace Mesh.NodeAgent.Tests.Datapath;

/// <summary>
/// The node's own devices get mesh_from_network, which hands traffic from elsewhere to the node's proxy; an endpoint's
/// veth never does, even when it carries an address and so looks like a device, or its own programs would be replaced.
/// </summary>
[Trait("Category", "Privileged")]
public sealed class NodeDevicesPrivilegedTests
{
    [Fact]
    public void An_endpoint_veth_with_an_address_keeps_its_own_programs_under_automatic_devices()
    {
        Privileged.Require();
        using var s = Start();
        IpRoute.Run(NetworkNamespace.PathOf(s.Net.Node), "addr", "add", "10.210.9.1/32", "dev", TwoPodTopology.HostSideA);
        s.Datapath.Dispose();
        using var datapath = BpfDatapath.Open(new BpfDatapathOptions { Netns = s.Net.Node, PinRoot = s.PinRoot, Devices = NodeDevices.AutoDetect });
        Assert.Contains(TwoPodTopology.HostSideA, NetworkNamespace.Run(s.Net.Node, NodeDevices.AutoDetect.Resolve));

        // A's egress is enforced and allows nothing; B's ingress is not enforced. Only A's own program stops the packet.
        datapath.Apply(Snapshot(1, new IdentityPolicyItem(IdentityA, false, true, [])));

        Assert.False(s.Net.TcpFromA(80), "the device program replaced the endpoint's: A's egress went unenforced");
    }
}
