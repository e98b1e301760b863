using Grpc.Core;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Management;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>An agent is its node: its token watches that node only, acks only versions the control plane produced, and reaches nothing else.</summary>
public sealed class AgentIdentityTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess Cp => shared.Process;

    [Fact]
    public async Task A_node_token_cannot_watch_another_node()
    {
        using var channel = TestTokens.Channel(Cp.Grpc, TestTokens.NodeA);
        using var call = new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: Ct);
        await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-b" } }, Ct);
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseStream.MoveNext(Ct));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains("agent.sync", denied.Status.Detail);
        Assert.Contains("node-b", denied.Status.Detail);
    }

    [Fact]
    public async Task An_ack_beyond_the_produced_version_is_refused_and_not_recorded()
    {
        // A version to be sent: an empty log has produced none, and a watcher gets nothing until one is.
        await Cp.Client.ApplyPolicyAsync("default", "any", """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: any, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: backend } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: frontend } } ] } ]
            """, Ct);
        using var channel = TestTokens.Channel(Cp.Grpc, TestTokens.NodeA);
        using var call = new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: Ct);
        await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-a" } }, Ct);
        Assert.True(await call.ResponseStream.MoveNext(Ct), "node-a's own token watches node-a");
        var produced = call.ResponseStream.Current.Snapshot.Version;

        await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Node = "node-a", Version = produced + 1_000_000, Outcome = AckOutcome.Applied } }, Ct);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => { while (await call.ResponseStream.MoveNext(Ct)) { } });
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("beyond the newest version", refused.Status.Detail);
        var node = (await Cp.Client.ListNodesAsync(Ct)).FirstOrDefault(n => n.Node == "node-a");
        Assert.True(node is null || node.AckedVersion <= (long)produced, $"node-a is recorded at v{node?.AckedVersion}");
    }

    [Fact]
    public async Task A_node_token_reaches_nothing_but_the_agent_protocol()
    {
        using var channel = TestTokens.Channel(Cp.Grpc, TestTokens.NodeA);
        var list = await Assert.ThrowsAsync<RpcException>(async () => await new Policies.PoliciesClient(channel).ListPoliciesAsync(new(), cancellationToken: Ct));
        Assert.Equal(StatusCode.PermissionDenied, list.StatusCode);
        using var http = TestTokens.Http(Cp.Api, TestTokens.NodeA);
        using var status = await http.GetAsync("v1/endpoints", Ct);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, status.StatusCode);
    }
}
