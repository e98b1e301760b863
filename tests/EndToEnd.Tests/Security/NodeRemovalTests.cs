using System.Net;
using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Management;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>A node nobody runs (an invented name, an agent gone for good) can be removed by an administrator, over both APIs.</summary>
public sealed class NodeRemovalTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess Cp => shared.Process;

    [Fact]
    public async Task DELETE_v1_nodes_removes_an_invented_node_and_its_addresses()
    {
        using (var channel = TestTokens.Channel(Cp.Grpc))
        using (var call = new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: Ct))
        {
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "invented", Addresses = { "10.99.0.1" } } }, Ct);
            await WaitUntilAsync(async () => (await Cp.Client.ListNodesAsync(Ct)).Any(n => n.Node == "invented" && n.Addresses?.Count == 1));

            using var whileConnected = await TestTokens.Http(Cp.Api).DeleteAsync("v1/nodes/invented", Ct);
            Assert.Equal(HttpStatusCode.Conflict, whileConnected.StatusCode);
        }
        await WaitUntilAsync(async () => (await Cp.Client.ListNodesAsync(Ct)).Single(n => n.Node == "invented").Connected == false);

        using (var asViewer = await TestTokens.Http(Cp.Api, TestTokens.Viewer).DeleteAsync("v1/nodes/invented", Ct))
        {
            Assert.Equal(HttpStatusCode.Forbidden, asViewer.StatusCode);
            Assert.Contains("nodes.write", await asViewer.Content.ReadAsStringAsync(Ct));
        }
        using (var deleted = await TestTokens.Http(Cp.Api).DeleteAsync("v1/nodes/invented", Ct))
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.DoesNotContain(await Cp.Client.ListNodesAsync(Ct), n => n.Node == "invented");
        using (var again = await TestTokens.Http(Cp.Api).DeleteAsync("v1/nodes/invented", Ct))
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);

        using var grpc = TestTokens.Channel(Cp.Grpc);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await new Nodes.NodesClient(grpc).DeleteNodeAsync(new() { Node = "never-seen" }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    private static Task WaitUntilAsync(Func<Task<bool>> condition) => Poll.UntilAsync(condition, "the node got there", every: TimeSpan.FromMilliseconds(100));
}
