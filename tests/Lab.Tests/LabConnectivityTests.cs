using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Contracts.Netns;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>Without a control plane or agents nothing filters, so every pod reaches every pod on every served port.</summary>
public sealed class LabConnectivityTests
{
    [Fact]
    public async Task Three_pods_on_one_node_reach_each_other_on_tcp_and_udp_80_and_81()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var pods = new[] { lab.AddPod("shop/frontend"), lab.AddPod("shop/backend"), lab.AddPod("ops/monitor") };

        var failures = new List<string>();
        foreach (var from in pods)
            foreach (var to in pods.Where(p => p != from))
                foreach (var port in PodServer.NamedPorts.Where(p => p.EchoesLines))
                {
                    var result = await TestLab.Probe(from, to, port.Port, port.Protocol);
                    if (!result.Connected) failures.Add($"{from.Id} -> {to.Id} {port.Name}: {result.Detail}");
                }
        Assert.Empty(failures);
        Assert.Equal(["10.201.1.2", "10.201.1.3", "10.201.1.4"], pods.Select(p => p.Ip));
    }

    [Fact]
    public async Task Pods_on_two_nodes_reach_each_other()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var a = lab.AddPod("default/a", node: "node-1");
        var b = lab.AddPod("default/b", node: "node-2");

        Assert.StartsWith("10.201.1.", a.Ip);
        Assert.StartsWith("10.201.2.", b.Ip);
        foreach (var protocol in new[] { LabProtocol.Tcp, LabProtocol.Udp })
        {
            Assert.True((await TestLab.Probe(a, b, 80, protocol)).Connected, $"a -> b {protocol}");
            Assert.True((await TestLab.Probe(b, a, 81, protocol)).Connected, $"b -> a {protocol}");
        }
    }

    [Fact]
    public async Task A_pod_server_echoes_on_its_four_echo_ports_and_speaks_http()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var server = lab.AddPod("web/server");
        var client = lab.AddPod("web/client");

        Assert.Equal(4, PodServer.NamedPorts.Count(p => p.EchoesLines));
        foreach (var port in PodServer.NamedPorts.Where(p => p.EchoesLines))
            Assert.True((await TestLab.Probe(client, server, port.Port, port.Protocol)).Connected, port.Name);

        var answer = await HttpGet(client, server, "/healthz");
        Assert.StartsWith("HTTP/1.1 200 OK", answer);
        Assert.Contains("web/server port 80: GET /healthz", answer);
    }

    [Fact]
    public async Task A_probe_to_a_port_nobody_serves_fails()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");
        var b = lab.AddPod("default/b");

        var tcp = await TestLab.Probe(a, b, 82, LabProtocol.Tcp);
        var udp = await TestLab.Probe(a, b, 82, LabProtocol.Udp);
        Assert.False(tcp.Connected);
        Assert.False(udp.Connected);
        Assert.Equal("refused", tcp.Detail);
    }

    [Fact]
    public void Nodes_forward_and_pods_have_a_link_local_gateway_with_a_static_neighbour()
    {
        Privileged.Require();
        using var lab = new TestLab();
        var node = lab.Lab.Up(1).State.Nodes.Single();
        var pod = lab.AddPod("default/a");

        Assert.Equal("1", NetworkNamespace.Run(node.Netns, () => File.ReadAllText("/proc/sys/net/ipv4/ip_forward").Trim()));
        Assert.Matches("^lxc[0-9a-f]{8}$", pod.HostInterface);
        Assert.Contains("default via 169.254.1.1 dev eth0", IpCommand.In(pod.Netns, "route", "show"));
        Assert.Contains("169.254.1.1 dev eth0 lladdr", IpCommand.In(pod.Netns, "neigh", "show"));
        Assert.Contains("PERMANENT", IpCommand.In(node.Netns, "neigh", "show", "dev", pod.HostInterface));
    }

    private static async Task<string> HttpGet(LabPod from, LabPod to, string path)
    {
        var ct = TestContext.Current.CancellationToken;
        using var socket = NetworkNamespace.Run(from.Netns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(IPAddress.Parse(to.Ip), 80, ct);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {to.Name}\r\nConnection: close\r\n\r\n"), ct);
        var buffer = new byte[4096];
        var text = new StringBuilder();
        int n;
        while ((n = await socket.ReceiveAsync(buffer, ct)) > 0) text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        return text.ToString();
    }
}
