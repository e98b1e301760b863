using System.Net;
using System.Net.Http.Json;
using Grpc.Core;
using Mesh.Contracts.Api;
using Mesh.Testing;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// A node is taken out of service as kubectl drains one: it takes no new endpoints and its endpoints are removed, over
/// REST, gRPC and meshctl alike, until it is uncordoned. Other nodes' endpoints are untouched.
/// </summary>
public sealed class NodeDrainTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess Cp => shared.Process;

    private static EndpointRegistration Pod(string name, string node, int host) =>
        new("drain", name, node, $"10.204.0.{host}", $"lxc{name}", new Dictionary<string, string> { ["app"] = name });

    [Fact]
    public async Task A_drained_node_loses_its_endpoints_and_refuses_new_ones_until_it_is_uncordoned()
    {
        foreach (var pod in new[] { Pod("a1", "drain-a", 1), Pod("a2", "drain-a", 2), Pod("b1", "drain-b", 3) })
            await Cp.Client.RegisterEndpointAsync(pod, Ct);

        using (var asViewer = await TestTokens.Http(Cp.Api, TestTokens.Viewer).PostAsync("v1/nodes/drain-a/drain", null, Ct))
        {
            Assert.Equal(HttpStatusCode.Forbidden, asViewer.StatusCode);
            Assert.Contains("nodes.write", await asViewer.Content.ReadAsStringAsync(Ct));
        }
        Assert.Contains(await Cp.Client.ListEndpointsAsync(Ct), e => e.Name == "a1");   // a refused drain removed nothing

        var drained = await Cp.Client.DrainNodeAsync("drain-a", Ct);
        Assert.NotNull(drained);
        Assert.Equal(["drain/a1", "drain/a2"], drained.RemovedEndpoints.Order(StringComparer.Ordinal));
        var endpoints = await Cp.Client.ListEndpointsAsync(Ct);
        Assert.DoesNotContain(endpoints, e => e.Node == "drain-a");
        Assert.Contains(endpoints, e => e.Name == "b1");
        var nodes = await Cp.Client.ListNodesAsync(Ct);
        Assert.True(nodes.Single(n => n.Node == "drain-a").Drained);
        Assert.False(nodes.Single(n => n.Node == "drain-b").Drained);

        using (var refused = await TestTokens.Http(Cp.Api).PostAsJsonAsync("v1/endpoints", Pod("a3", "drain-a", 4), MeshApiClient.Json, Ct))
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            var problem = await refused.Content.ReadAsStringAsync(Ct);
            Assert.Contains("\"node\"", problem);
            Assert.Contains("uncordon", problem);
        }
        Assert.Empty((await Cp.Client.DrainNodeAsync("drain-a", Ct))!.RemovedEndpoints);   // again: nothing more to do

        await Cp.Client.UncordonNodeAsync("drain-a", Ct);
        await Cp.Client.RegisterEndpointAsync(Pod("a3", "drain-a", 4), Ct);
        Assert.False((await Cp.Client.ListNodesAsync(Ct)).Single(n => n.Node == "drain-a").Drained);
    }

    [Fact]
    public async Task Drain_and_uncordon_work_over_gRPC_and_meshctl_and_an_unknown_node_is_not_found()
    {
        await Cp.Client.RegisterEndpointAsync(Pod("c1", "drain-c", 5), Ct);
        using var channel = TestTokens.Channel(Cp.Grpc);
        var nodes = new Rpc.Nodes.NodesClient(channel);
        var drained = await nodes.DrainNodeAsync(new() { Node = "drain-c" }, cancellationToken: Ct);
        Assert.Equal(["drain/c1"], drained.RemovedEndpoints);
        Assert.True((await nodes.ListNodesAsync(new(), cancellationToken: Ct)).Nodes.Single(n => n.Node_ == "drain-c").Drained);
        await nodes.UncordonNodeAsync(new() { Node = "drain-c" }, cancellationToken: Ct);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await nodes.DrainNodeAsync(new() { Node = "never-seen" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Null(await Cp.Client.UncordonNodeAsync("never-seen", Ct));

        await Cp.Client.RegisterEndpointAsync(Pod("c2", "drain-c", 6), Ct);
        var env = new Dictionary<string, string> { ["MESH_SERVER"] = Cp.Api.ToString() };
        var drain = await CliRun.MeshctlAsync(env, "node", "drain", "drain-c");
        Assert.True(drain.ExitCode == 0, drain.Output);
        Assert.Contains("drain/c2", drain.Output);
        var status = await CliRun.MeshctlAsync(env, "node", "status");
        Assert.Contains("drained", status.Output);
        var uncordon = await CliRun.MeshctlAsync(env, "node", "uncordon", "drain-c");
        Assert.True(uncordon.ExitCode == 0, uncordon.Output);
        var missing = await CliRun.MeshctlAsync(env, "node", "drain", "never-seen");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no node never-seen", missing.Output);
    }
}
