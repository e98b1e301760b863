using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.Contracts.Hubble.Flows;
using Mesh.Contracts.Hubble.Observers;
using Mesh.NodeAgent.Flows;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.EndToEnd.Tests.Flows;

/// <summary>
/// Hubble's Observer API on the control plane, as hubble-relay: every node's shipped flows in one stream, in time
/// order, with Hubble's filters, from the history; follow delivers flows shipped after the call began.
/// </summary>
public sealed class ClusterObserverTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _shipping = [];
    private readonly Dictionary<string, FlowShipper> _shippers = [];

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        foreach (var node in new[] { "node-a", "node-b" })
        {
            var shipper = new FlowShipper(node, [ControlPlaneReplica.Connect(_cp.Grpc, TestTokens.AdminTokenFile)], TextWriter.Null);
            _shippers[node] = shipper;
            _shipping.Add(shipper.RunAsync(_stop.Token));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_shipping);
        await _cp.DisposeAsync();
    }

    private async Task<List<GetFlowsResponse>> GetFlowsAsync(GetFlowsRequest request, string? token = null)
    {
        using var channel = TestTokens.Channel(_cp.Grpc, token ?? TestTokens.Viewer);
        using var call = new Observer.ObserverClient(channel).GetFlows(request, cancellationToken: Ct);
        return await call.ResponseStream.ReadAllAsync(Ct).ToListAsync(Ct);
    }

    [Fact]
    public async Task Both_nodes_flows_come_in_one_stream_in_time_order_filtered_as_Hubble_filters()
    {
        var start = DateTimeOffset.UtcNow;
        for (var i = 0; i < 40; i++) _shippers[i % 2 == 0 ? "node-a" : "node-b"].Add(TestFlows.Numbered(start.AddMilliseconds(i * 10), i));
        var window = new GetFlowsRequest { Since = Timestamp.FromDateTimeOffset(start.AddSeconds(-1)), Until = Timestamp.FromDateTimeOffset(start.AddSeconds(10)) };

        var deadline = DateTime.UtcNow.AddSeconds(30);
        List<GetFlowsResponse> all;
        while ((all = await GetFlowsAsync(window)).Count < 40)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{all.Count} of 40 flows");
            await Task.Delay(100, Ct);
        }
        Assert.Equal(Enumerable.Range(0, 40).Select(i => $"flow {i}"), all.Select(r => r.Flow.Summary));
        Assert.Equal(all.Select(r => r.Flow.NodeName), all.Select(r => r.NodeName));
        Assert.Contains(all, r => r.NodeName == "node-b");

        var droppedOnB = window.Clone();
        droppedOnB.Whitelist.Add(new FlowFilter { NodeName = { "node-b" }, Verdict = { Verdict.Dropped } });
        Assert.Equal([3, 9, 15, 21, 27, 33, 39], (await GetFlowsAsync(droppedOnB)).Select(r => TestFlows.NumberOf(r.Flow)));

        var notApi = window.Clone();
        notApi.Blacklist.Add(new FlowFilter { DestinationPod = { "shop/api" } });
        Assert.All(await GetFlowsAsync(notApi), r => Assert.Equal("db-1", r.Flow.Destination.PodName));

        var firstThree = window.Clone();
        (firstThree.Number, firstThree.First) = (3, true);
        Assert.Equal(["flow 0", "flow 1", "flow 2"], (await GetFlowsAsync(firstThree)).Select(r => r.Flow.Summary));
        var lastTwo = window.Clone();
        lastTwo.Number = 2;
        Assert.Equal(["flow 38", "flow 39"], (await GetFlowsAsync(lastTwo)).Select(r => r.Flow.Summary));

        var unsupported = window.Clone();
        unsupported.Whitelist.Add(new FlowFilter { SourceFqdn = { "example.com" } });
        var refused = await Assert.ThrowsAsync<RpcException>(() => GetFlowsAsync(unsupported));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);

        var asNode = await Assert.ThrowsAsync<RpcException>(() => GetFlowsAsync(window, TestTokens.NodeA));
        Assert.Equal(StatusCode.PermissionDenied, asNode.StatusCode);
        Assert.Contains("flows.read", asNode.Status.Detail);
    }

    [Fact]
    public async Task Follow_delivers_a_flow_shipped_after_the_call_began()
    {
        using var channel = TestTokens.Channel(_cp.Grpc, TestTokens.Viewer);
        var request = new GetFlowsRequest { Follow = true };
        request.Whitelist.Add(new FlowFilter { NodeName = { "node-b" } });
        using var call = new Observer.ObserverClient(channel).GetFlows(request, cancellationToken: Ct);
        var next = call.ResponseStream.MoveNext(Ct);
        _shippers["node-b"].Add(TestFlows.Numbered(DateTimeOffset.UtcNow, 1_001));
        _shippers["node-a"].Add(TestFlows.Numbered(DateTimeOffset.UtcNow, 1_002));
        Assert.True(await next.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal(("flow 1001", "node-b"), (call.ResponseStream.Current.Flow.Summary, call.ResponseStream.Current.NodeName));
    }
}
