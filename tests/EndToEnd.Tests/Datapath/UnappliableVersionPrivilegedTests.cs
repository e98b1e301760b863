using System.Text.Json;
using Mesh.Contracts.Api;
using Mesh.Lab;
using Mesh.NodeAgent.Flows;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Datapath;

/// <summary>
/// A version the agent cannot apply is acked as failed with its reason, shows in `meshctl node status`, and leaves
/// the previous version enforcing; the first version that can be applied again clears the error.
/// </summary>
[Trait("Category", "Privileged")]
[Collection(DatapathSystemTests.Collection)]
public sealed class UnappliableVersionPrivilegedTests : MeshSystemTest
{
    [Fact]
    public async Task A_version_that_cannot_be_applied_is_reported_as_the_nodes_last_error_while_the_previous_one_keeps_enforcing()
    {
        Privileged.Require();
        var ct = TestContext.Current.CancellationToken;
        var client = await mesh.AddPodAsync("default/a", "app=client");
        var server = await mesh.AddPodAsync("default/b", "app=server");
        var enforced = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(80));
        await mesh.WaitForAckAsync(enforced);

        // A second endpoint that claims the server's interface: no version that holds both can be enforced.
        var ghost = await mesh.Api.RegisterEndpointAsync(new EndpointRegistration(
            "default", "ghost", MeshSystem.Node, "10.201.1.200", server.HostInterface, new Dictionary<string, string> { ["app"] = "ghost" }), ct);
        var failing = await mesh.ApplyAsync(ServerPolicies.Name, ServerPolicies.ClientMayReachPort(81));
        var node = await mesh.WaitForNodeAsync(n => n.LastError?.Contains($"v{failing}", StringComparison.Ordinal) == true, $"v{failing} is reported as failed");
        Assert.Contains($"interface {server.HostInterface} belongs to several endpoints", node.LastError);

        // The identity of the ghost's labels may come in a version of its own, before the ghost itself: that one applies.
        Assert.InRange(node.AckedVersion, enforced, ghost.Version - 1);
        enforced = node.AckedVersion;
        Assert.True(await PodTcp.ConversesAsync(client, server, 80), $"v{enforced} keeps enforcing: 80 is still allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 81), $"v{enforced} keeps enforcing: 81 is still dropped");
        var status = await mesh.RunAsync("node", "status");
        Assert.Contains($"v{failing}:", status.Stdout);
        var statusJson = await mesh.RunAsync("node", "status", "-o", "json");
        Assert.Contains($"v{failing}", JsonDocument.Parse(statusJson.Stdout).RootElement[0].GetProperty("lastError").GetString());
        var flows = await mesh.SettledFlowsAsync();
        Assert.Contains(flows, f => f.Destination == $"{server.Ip}:81" && f.Verdict == "DROPPED" && f.Version == (ulong)enforced);
        Assert.DoesNotContain(flows, f => f.Version >= (ulong)ghost.Version);

        var recovered = (await mesh.Api.DeleteEndpointAsync("default", "ghost", ct))!.Version;
        node = await mesh.WaitForAckAsync(recovered);

        Assert.Null(node.LastError);
        Assert.True(await PodTcp.ConversesAsync(client, server, 81), "the recovered node enforces the newest policy: 81 is allowed");
        Assert.False(await PodTcp.ConversesAsync(client, server, 80), "the recovered node enforces the newest policy: 80 is dropped");
        await ObserveShowsTheDropsBetweenThePodsByName(client, server, enforced);
    }

    /// <summary>`meshctl observe` shows the drops between the pods, by name, from the control plane's flow history.</summary>
    private async Task ObserveShowsTheDropsBetweenThePodsByName(LabPod client, LabPod server, long enforced)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<JsonElement> shown;
        while (!(shown = await ObserveAsync()).Any(f => f.GetProperty("Summary").GetString()!.EndsWith($" at v{enforced}", StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no drop of v{enforced} among {shown.Count} flows shown");
            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
        Assert.All(shown, f =>
        {
            Assert.Equal(client.Ip, f.GetProperty("IP").GetProperty("source").GetString());
            Assert.Equal(server.Ip, f.GetProperty("IP").GetProperty("destination").GetString());
            Assert.Equal(81, f.GetProperty("l4").GetProperty("TCP").GetProperty("destination_port").GetInt32());
            Assert.Equal("DROPPED", f.GetProperty("verdict").GetString());
        });

        async Task<List<JsonElement>> ObserveAsync()
        {
            var run = await mesh.RunAsync("observe", "--from-pod", client.Id, "--to-pod", server.Id, "--to-port", "81", "--verdict", "DROPPED", "--last", "1000", "-o", "json");
            return [.. run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("flow"))];
        }
    }
}
