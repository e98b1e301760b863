using System.Diagnostics;
using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// One endpoint never blocks a node: a pod whose interface vanished behind the control plane's back waits for it
/// while every other pod follows each new version, people see why, and it is enforced again once its interface is
/// back. And the lab's pods come and go cleanly: delete lets the node go of the endpoint before its interface goes,
/// and a pod made again under the same name is one clean, enforced endpoint.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class EndpointLifecyclePrivilegedTests : MeshSystemTest
{
    [Fact]
    public async Task A_pod_whose_interface_vanished_waits_for_it_while_the_other_pods_follow_new_versions_and_is_enforced_once_it_is_back()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var vanishing = await mesh.AddPodAsync("default/c", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        Assert.True(await PodTcp.ConversesAsync(client, vanishing, 80), "c is enforced: 80 is allowed");

        // The pod's veth goes; the control plane still has its endpoint.
        IpCommand.In(mesh.NodeState.Netns, "link", "del", vanishing.HostInterface);
        var noticed = await mesh.WaitForNodeAsync(n => WaitingIds(n).Contains("default/c"), "the node reports default/c waiting for its interface");
        var reason = noticed.WaitingEndpoints!.Single().Reason;
        Assert.Contains($"interface {vanishing.HostInterface} not found in network namespace {mesh.NodeState.Netns}", reason);

        var changed = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(81));
        var node = await mesh.WaitForAckAsync(changed);

        Assert.Null(node.LastError);
        Assert.Equal(["default/c"], WaitingIds(node));
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "the other pods follow the new version: 81 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the other pods follow the new version: 80 is dropped");
        await UsersSeeTheEndpointWaiting("default/c", reason);

        // The veth is back (a new interface of the same name): the node enforces the pod again, by the newest version.
        LabTopology.WirePod(mesh.NodeState, vanishing);
        node = await mesh.WaitForNodeAsync(n => WaitingIds(n).Length == 0, "the node no longer reports default/c waiting");
        Assert.Equal(changed, node.AckedVersion);
        Assert.True(await PodTcp.ConversesAsync(client, vanishing, 81), "c is enforced again: 81 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, vanishing, 80), "c is enforced again: 80 is dropped");
        Assert.Equal(EndpointReadiness.Ready, (await EndpointAsync("default/c")).Status!.State);
    }

    [Fact]
    public async Task A_deleted_pod_leaves_its_node_before_its_interface_goes_and_a_pod_made_again_under_its_name_is_one_clean_enforced_endpoint()
    {
        Privileged.Require();
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync(await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80)));
        var identity = (await EndpointAsync("default/b")).Identity;

        await mesh.RunAsync("lab", "pod", "delete", "default/b");

        // The delete returned once the node enforced the version without the endpoint, and only then removed the pod.
        var deletedAt = (await mesh.Api.StatusAsync(TestContext.Current.CancellationToken)).Version;
        var node = await mesh.NodeViewAsync();
        Assert.True(node.AckedVersion >= deletedAt, $"the node acknowledged v{node.AckedVersion}, not yet v{deletedAt} that deleted default/b");
        Assert.Empty(WaitingIds(node));
        Assert.DoesNotContain(await mesh.Api.ListEndpointsAsync(TestContext.Current.CancellationToken), e => e.Name == "b");
        Assert.False(NodeHasInterface(server.HostInterface), "the pod's veth is gone");

        var again = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync((await mesh.Api.StatusAsync(TestContext.Current.CancellationToken)).Version);

        var endpoint = Assert.Single(await mesh.Api.ListEndpointsAsync(TestContext.Current.CancellationToken), e => e.Name == "b");
        Assert.Equal((again.HostInterface, again.Ip, identity), (endpoint.Interface, endpoint.Ip, endpoint.Identity));
        Assert.Equal(new EndpointStatus(EndpointReadiness.Ready), endpoint.Status);
        Assert.True(await PodTcp.ConversesAsync(client, again, 80), "the new pod is enforced: 80 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, again, 81), "the new pod is enforced: 81 is dropped");
        Assert.DoesNotContain("wait for their interface", mesh.AgentLog(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_a_pod_waits_for_its_node_to_let_go_of_the_endpoint_and_says_what_to_check_when_it_does_not()
    {
        Privileged.Require();
        var server = await mesh.AddPodAsync("default/b", "app=server");
        await mesh.WaitForAckAsync((await mesh.Api.StatusAsync(TestContext.Current.CancellationToken)).Version);
        var agent = mesh.NodeState.Agent!.Pid;

        // A stopped agent keeps its call open but acknowledges nothing: the delete waits for it, then goes on and says so.
        Signal(agent, "STOP");
        CliRun.Result run;
        try { run = await mesh.RunAsync("lab", "pod", "delete", "default/b"); }
        finally { Signal(agent, "CONT"); }

        var deletedAt = (await mesh.Api.StatusAsync(TestContext.Current.CancellationToken)).Version;
        Assert.Contains($"{MeshSystem.Node} has not acknowledged v{deletedAt}, the version without endpoint default/b", Unwrapped(run.Output));
        Assert.Contains($"meshctl lab agent start {MeshSystem.Node}", Unwrapped(run.Output));
        Assert.False(NodeHasInterface(server.HostInterface), "the pod is deleted all the same");
        await mesh.WaitForAckAsync(deletedAt);
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>meshctl wraps long lines at the terminal's width.</summary>
    private static string Unwrapped(string output) => string.Join(" ", output.Split('\n').Select(l => l.Trim()));

    private static string[] WaitingIds(NodeView node) => [.. (node.WaitingEndpoints ?? []).Select(w => w.Endpoint)];

    private async Task<EndpointView> EndpointAsync(string id) =>
        Assert.Single(await mesh.Api.ListEndpointsAsync(TestContext.Current.CancellationToken), e => $"{e.Namespace}/{e.Name}" == id);

    private bool NodeHasInterface(string name) =>
        IpCommand.Execute("ip", ["-n", mesh.NodeState.Netns, "link", "show", "dev", name]).Code == 0;

    /// <summary>The API, `meshctl node status` and `meshctl endpoint list` (tables and JSON) all say the endpoint waits, and why.</summary>
    private async Task UsersSeeTheEndpointWaiting(string id, string reason)
    {
        Assert.Equal(new EndpointStatus(EndpointReadiness.WaitingForInterface, reason), (await EndpointAsync(id)).Status);

        var status = await mesh.RunAsync("node", "status");
        Assert.Contains("WAITING FOR INTERFACE", status.Stdout);
        Assert.Contains(id, status.Stdout);
        Assert.Contains("1 endpoint(s) wait for their interface", status.Stdout);
        using var nodes = JsonDocument.Parse((await mesh.RunAsync("node", "status", "-o", "json")).Stdout);
        var waiting = Assert.Single(nodes.RootElement[0].GetProperty("waitingEndpoints").EnumerateArray());
        Assert.Equal((id, reason), (waiting.GetProperty("endpoint").GetString(), waiting.GetProperty("reason").GetString()));

        var list = await mesh.RunAsync("endpoint", "list");
        Assert.Contains("waiting for interface:", list.Stdout);
        using var endpoints = JsonDocument.Parse((await mesh.RunAsync("endpoint", "list", "-o", "json")).Stdout);
        var states = endpoints.RootElement.EnumerateArray().ToDictionary(
            e => $"{e.GetProperty("namespace").GetString()}/{e.GetProperty("name").GetString()}", e => e.GetProperty("status").GetProperty("state").GetString());
        Assert.Equal("waiting-for-interface", states[id]);
        Assert.All(states.Where(s => s.Key != id), s => Assert.Equal("ready", s.Value));
    }
}
