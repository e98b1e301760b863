using System.Net;
using Mesh.Testing;

namespace Mesh.Lab.Tests;

/// <summary>Traffic between lab places other than pod to pod: ICMP echo, and a node's own netns answering on a port.</summary>
[Trait("Category", "Privileged")]
public sealed class LabPlacesPrivilegedTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_icmp_echo_from_a_pod_to_a_pod_on_another_node_and_to_a_node_is_answered()
    {
        Privileged.Require();
        using var lab = new TestLab();
        var state = lab.Lab.Up(2).State;
        var a = lab.AddPod("default/a", node: "node-1");
        var b = lab.AddPod("default/b", node: "node-2");

        var toPod = await Prober.PingAsync(a.Netns, IPAddress.Parse(b.Ip), TimeSpan.FromSeconds(3), Ct);
        var toNode = await Prober.PingAsync(b.Netns, LabPlaces.Target(lab.Lab.Read()!, "node/node-1").Address, TimeSpan.FromSeconds(3), Ct);

        Assert.True(toPod.Connected, toPod.Detail);
        Assert.Equal("echo reply", toPod.Detail);
        Assert.True(toNode.Connected, toNode.Detail);
        Assert.Equal("10.200.0.1", state.Nodes[0].Address);
    }

    [Fact]
    public async Task An_icmp_echo_to_an_address_nobody_has_gets_no_reply()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(1);
        var a = lab.AddPod("default/a");

        var result = await Prober.PingAsync(a.Netns, IPAddress.Parse("10.201.1.250"), TimeSpan.FromMilliseconds(800), Ct);

        Assert.False(result.Connected);
        Assert.True(result.Detail.StartsWith("no echo reply within", StringComparison.Ordinal) || result.Detail.Contains("unreachable", StringComparison.Ordinal), result.Detail);
    }

    [Fact]
    public async Task A_node_listener_answers_a_pod_over_tcp_and_http_and_stops_with_the_lab()
    {
        Privileged.Require();
        using var lab = new TestLab();
        lab.Lab.Up(2);
        var pod = lab.AddPod("default/a", node: "node-2");

        var listener = lab.Lab.ListenOnNode("node-1", 8080, PodServerHost.NodeListener);
        var again = lab.Lab.ListenOnNode("node-1", 8080, PodServerHost.NodeListener);
        var state = lab.Lab.Read()!;
        var probe = await Prober.ProbeAsync(pod.Netns, IPAddress.Parse(state.Node("node-1")!.Address), 8080, LabProtocol.Tcp, TimeSpan.FromSeconds(2), Ct);
        var http = await LabHttp.SendAsync(pod.Netns, new LabHttpRequest(new Uri("http://node-1:8080/metrics")), LabHttp.StateResolver(state, LabPlaces.Source(state, pod.Id)), TimeSpan.FromSeconds(10), Ct);
        var otherPort = await Prober.ProbeAsync(pod.Netns, IPAddress.Parse(state.Node("node-1")!.Address), 8081, LabProtocol.Tcp, TimeSpan.FromSeconds(2), Ct);

        Assert.True(probe.Connected, probe.Detail);
        Assert.Equal((200, "node/node-1 port 8080: GET /metrics\n"), (http.Status!.Value, http.Body!));
        Assert.False(otherPort.Connected);
        Assert.Equal(listener.Server!.Pid, again.Server!.Pid);
        Assert.Equal([8080], state.Node("node-1")!.Listeners.Select(l => l.Port));

        lab.Lab.Down();
        Assert.False(DetachedProcess.IsAlive(listener.Server), "lab down stops the node's listener");
    }
}
