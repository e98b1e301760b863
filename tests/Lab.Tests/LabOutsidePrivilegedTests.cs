using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Contracts.Netns;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>Hosts outside the cluster: on the underlay, routed to and from every node's pods, with the pod server's ports.</summary>
[Trait("Category", "Privileged")]
public sealed class LabOutsidePrivilegedTests
{
    [Fact]
    public async Task An_outside_host_at_its_default_address_serves_pods_on_every_node_and_reaches_them()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var a = lab.AddPod("default/a", node: "node-1");
        var b = lab.AddPod("default/b", node: "node-2");

        var web = lab.Lab.AddOutside("web");

        Assert.Equal("10.202.0.1", web.Ip);
        Assert.Equal(lab.Name + "-outside-web", web.Netns);
        Assert.Empty(await TestLab.Unreachable(a.Netns, web.Ip));
        Assert.Empty(await TestLab.Unreachable(b.Netns, web.Ip));
        Assert.Empty(await TestLab.Unreachable(web.Netns, a.Ip));
        Assert.Empty(await TestLab.Unreachable(web.Netns, b.Ip));
        var answer = await HttpGet(a.Netns, web.Ip, "/where");
        Assert.StartsWith("HTTP/1.1 200", answer);
        Assert.Contains("/where", answer);
        Assert.Equal("10.202.0.2", lab.Lab.AddOutside("api").Ip);
    }

    [Fact]
    public async Task An_outside_host_at_a_chosen_address_is_reached_from_nodes_added_after_it()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var internet = lab.Lab.AddOutside("internet", "93.184.216.34");

        lab.Lab.Up(2);
        var late = lab.AddPod("default/late", node: "node-2");

        Assert.Equal("93.184.216.34", internet.Ip);
        Assert.Empty(await TestLab.Unreachable(late.Netns, internet.Ip));
        Assert.Empty(await TestLab.Unreachable(internet.Netns, late.Ip));
        // The pod sees the outside host's own address as the source: nothing translates it on the way.
        Assert.Contains("93.184.216.34", IpCommand.In(internet.Netns, "-4", "addr", "show", "dev", "eth0"));
    }

    [Fact]
    public async Task Deleting_an_outside_host_removes_its_server_namespace_and_the_nodes_routes()
    {
        Privileged.Require();
        using var lab = new TestLab();
        var node = lab.Lab.Up(1).State.Nodes.Single();
        var pod = lab.AddPod("default/a");
        var web = lab.Lab.AddOutside("web", "203.0.113.10");
        Assert.Contains("203.0.113.10", IpCommand.In(node.Netns, "route", "show"));

        var removed = lab.Lab.DeleteOutside("web");

        Assert.Equal("203.0.113.10", removed!.Ip);
        Assert.False(DetachedProcess.IsAlive(web.Server!), "its server survived");
        Assert.False(NetworkNamespace.Exists(web.Netns));
        Assert.DoesNotContain("203.0.113.10", IpCommand.In(node.Netns, "route", "show"));
        Assert.Empty(lab.Lab.Read()!.Outside);
        Assert.False((await TestLab.Probe(pod.Netns, web.Ip, 80, LabProtocol.Tcp)).Connected);
        Assert.Null(lab.Lab.DeleteOutside("web"));
    }

    [Fact]
    public void Lab_down_removes_outside_hosts_even_when_the_state_lost_them()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var web = lab.Lab.AddOutside("web");
        var text = File.ReadAllText(lab.Lab.Store.StatePath);
        File.WriteAllText(lab.Lab.Store.StatePath, text[..(text.Length / 2)]);

        var down = lab.Lab.Down();

        Assert.Empty(down.Problems);
        Assert.Contains(web.Netns, down.DeletedNamespaces);
        Assert.Empty(lab.Namespaces());
        Assert.False(DetachedProcess.IsAlive(web.Server!), "the outside host's server survived down");
    }

    [Fact]
    public void An_outside_host_needs_a_free_address_and_name()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        lab.Lab.AddOutside("web", "203.0.113.10");

        Assert.Contains("already exists", Assert.Throws<LabException>(() => lab.Lab.AddOutside("web")).Message);
        Assert.Contains("already an outside host's", Assert.Throws<LabException>(() => lab.Lab.AddOutside("api", "203.0.113.10")).Message);
        Assert.Contains("pod range", Assert.Throws<LabException>(() => lab.Lab.AddOutside("api", "10.201.1.9")).Message);
        Assert.Single(lab.Lab.Read()!.Outside);
        Assert.DoesNotContain(lab.Lab.Names.OutsideNetns("api"), lab.Namespaces());
    }

    private static async Task<string> HttpGet(string fromNetns, string to, string path)
    {
        var ct = TestContext.Current.CancellationToken;
        using var socket = NetworkNamespace.Run(fromNetns, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await socket.ConnectAsync(IPAddress.Parse(to), 80, ct);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: {to}\r\n\r\n"), ct);
        var buffer = new byte[4096];
        var text = new StringBuilder();
        int n;
        while ((n = await socket.ReceiveAsync(buffer, ct)) > 0) text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        return text.ToString();
    }
}
