using System.Net;
using System.Net.Sockets;
using Mesh.Contracts.Netns;
using Mesh.NodeAgent.Proxy;
using Mesh.Testing;

namespace Mesh.NodeAgent.Tests.Proxy;

/// <summary>The proxies' upstream sockets, made in a node namespace of the test's own.</summary>
[Trait("Category", "Privileged")]
public sealed class TransparentSocketsPrivilegedTests
{
    private static readonly IPAddress Pod = IPAddress.Parse("10.233.0.2");

    [Theory]
    [InlineData(ProtocolType.Udp)]
    [InlineData(ProtocolType.Tcp)]
    public async Task An_upstream_socket_never_takes_the_port_the_pod_asked_from(ProtocolType protocol)
    {
        Privileged.Require();
        using var node = new TproxyNode($"mts-{Guid.NewGuid().ToString("N")[..8]}");
        // Two ports to choose from: without the guard the pod's port comes up about every other time (UDP), or every time
        // (TCP, whose bind prefers odd ports).
        NetworkNamespace.Run(node.Netns, () => File.WriteAllText("/proc/sys/net/ipv4/ip_local_port_range", "40000 40001"));
        using var sockets = new TransparentSockets(node.Netns, upstreamMark: 0x1b000);

        var unguarded = new HashSet<int>();
        for (var i = 0; i < 40; i++)
        {
            using (var guarded = await sockets.UpstreamAsync(protocol, Pod, notPort: 40001))
                Assert.Equal(new IPEndPoint(Pod, 40000), guarded.LocalEndPoint);
            using var any = await sockets.UpstreamAsync(ProtocolType.Udp, Pod);
            unguarded.Add(((IPEndPoint)any.LocalEndPoint!).Port);
        }
        Assert.Contains(40001, unguarded);
    }
}
