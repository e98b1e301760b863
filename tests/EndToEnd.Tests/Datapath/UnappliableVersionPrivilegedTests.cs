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

    /// <summary>`meshctl observe` finds the lab agent's flow log and resolves pods given as NS/NAME to their IPs.</summary>
    private async Task ObserveShowsTheDropsBetweenThePodsByName(LabPod client, LabPod server, long enforced)
    {
        var run = await mesh.RunAsync("observe", "--from", client.Id, "--to", server.Id, "--port", "81", "--verdict", "DROPPED", "--last", "1000", "-o", "json");
        var shown = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<FlowRecord>(l, FlowRecord.Json)!).ToList();

        Assert.NotEmpty(shown);
        Assert.All(shown, f =>
        {
            Assert.StartsWith($"{client.Ip}:", f.Source);
            Assert.Equal($"{server.Ip}:81", f.Destination);
            Assert.Equal("DROPPED", f.Verdict);
        });
        Assert.Contains(shown, f => f.Version == (ulong)enforced);
    }
}
