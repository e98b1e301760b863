using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.ControlPlane.Flows;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Hubble.Flows;
using Mesh.NodeAgent.Flows;
using Mesh.NodeAgent.Sync;
using Mesh.Testing;
using Npgsql;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using Verdict = Mesh.Contracts.Hubble.Flows.Verdict;

namespace Mesh.EndToEnd.Tests.Flows;

/// <summary>
/// An agent's flows reach the control plane's flow history: every flow once and in order, losses counted and reported
/// when the pipeline is full, a batch sent again stored once, and a node shipping as itself only.
/// </summary>
public sealed class FlowShippingTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess _cp = null!;
    private NpgsqlDataSource _db = null!;
    private FlowStore _history = null!;
    private readonly string _nodeTokenFile = Path.GetTempFileName();

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        _db = NpgsqlDataSource.Create(_cp.ConnectionString);
        _history = new FlowStore(_db);
        await File.WriteAllTextAsync(_nodeTokenFile, TestTokens.NodeA, Ct);
    }

    public async ValueTask DisposeAsync()
    {
        await _db.DisposeAsync();
        await _cp.DisposeAsync();
        File.Delete(_nodeTokenFile);
    }

    private async Task<IReadOnlyList<FlowMessage>> StoredAsync(DateTimeOffset start, int count, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var stored = await _history.ReadAsync(new(start.AddMinutes(-1), start.AddMinutes(10), count + 1, Nodes: ["node-a"]), Ct);
            if (stored.Count >= count || DateTime.UtcNow > deadline) return stored;
            await Task.Delay(100, Ct);
        }
    }

    [Fact]
    public async Task Every_flow_reaches_the_history_once_in_order_under_the_nodes_own_name()
    {
        var shipper = new FlowShipper("node-a", [ControlPlaneReplica.Connect(_cp.Grpc, _nodeTokenFile)], TextWriter.Null,
            new FlowShippingOptions(BatchSize: 300));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var shipping = shipper.RunAsync(stop.Token);
        var start = DateTimeOffset.UtcNow;
        var sent = Enumerable.Range(0, 2_500).Select(i => TestFlows.Numbered(start.AddMilliseconds(i), i)).ToList();
        foreach (var flow in sent) { flow.NodeName = "someone-else"; shipper.Add(flow); }

        var stored = await StoredAsync(start, sent.Count, TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await shipping;
        Assert.Equal(sent.Select(f => f.Summary), stored.Select(f => f.Summary));
        Assert.All(stored, f => Assert.Equal("node-a", f.NodeName));   // recorded under the token's node, whatever the flow said
        Assert.Equal(0, shipper.Lost);
        Assert.Empty(await _history.LostAsync(start.AddMinutes(-1), start.AddMinutes(10), Ct));
    }

    [Fact]
    public async Task Flows_that_find_the_queue_full_are_counted_and_reported_and_the_kept_ones_stay_in_order()
    {
        var shipper = new FlowShipper("node-a", [ControlPlaneReplica.Connect(_cp.Grpc, _nodeTokenFile)], TextWriter.Null,
            new FlowShippingOptions(QueueCapacity: 50, BatchSize: 10, MaxInFlight: 1));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var start = DateTimeOffset.UtcNow;
        _cp.Pause();   // the control plane stops answering: one batch in flight, the queue fills, the rest is lost
        var shipping = shipper.RunAsync(stop.Token);
        for (var i = 0; i < 1_000; i++) shipper.Add(TestFlows.Numbered(start.AddMilliseconds(i), i));
        _cp.Resume();

        var last = TestFlows.Numbered(start.AddSeconds(5), 1_000);   // one more flow: its batch carries the count of what was lost
        var deadline = DateTime.UtcNow.AddSeconds(30);
        IReadOnlyDictionary<string, long> lost;
        var added = 1_000;
        do
        {
            shipper.Add(last.Clone());
            added++;
            await Task.Delay(200, Ct);
            lost = await _history.LostAsync(start.AddMinutes(-1), start.AddMinutes(10), Ct);
        }
        while (lost.GetValueOrDefault("node-a") == 0 && DateTime.UtcNow < deadline);
        Assert.True(lost.GetValueOrDefault("node-a") > 0, "the lost flows were reported");

        // Every flow is stored or counted, once the queue has drained.
        IReadOnlyList<FlowMessage> all;
        while ((all = await _history.ReadAsync(new(start.AddMinutes(-1), start.AddMinutes(10), 10_000, Nodes: ["node-a"]), Ct)).Count
               + (await _history.LostAsync(start.AddMinutes(-1), start.AddMinutes(10), Ct)).GetValueOrDefault("node-a") + shipper.Lost < added)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{all.Count} stored of {added}");
            await Task.Delay(100, Ct);
        }
        await stop.CancelAsync();
        await shipping;
        Assert.Equal(added, all.Count + (await _history.LostAsync(start.AddMinutes(-1), start.AddMinutes(10), Ct))["node-a"] + shipper.Lost);
        var numbers = all.Where(f => f.Summary != "flow 1000").Select(f => TestFlows.NumberOf(f)).ToList();
        Assert.Equal(numbers.Order(), numbers);
    }

    [Fact]
    public async Task A_batch_sent_again_is_stored_once_and_a_node_ships_only_as_itself()
    {
        using var channel = TestTokens.Channel(_cp.Grpc, TestTokens.NodeA);
        var client = new FlowShipping.FlowShippingClient(channel);
        var now = DateTimeOffset.UtcNow;
        var batch = new FlowBatch { Node = "node-a", Instance = "agent-1", Sequence = 1, Flows = { TestFlows.Numbered(now, 1), TestFlows.Numbered(now.AddMilliseconds(1), 2) } };
        for (var call = 0; call < 2; call++)
        {
            using var ship = client.Ship(cancellationToken: Ct);
            await ship.RequestStream.WriteAsync(batch, Ct);
            Assert.True(await ship.ResponseStream.MoveNext(Ct));
            Assert.Equal(1UL, ship.ResponseStream.Current.Sequence);
            await ship.RequestStream.CompleteAsync();
        }
        Assert.Equal(2, (await _history.ReadAsync(new(now.AddMinutes(-1), now.AddMinutes(1), 10, Nodes: ["node-a"]), Ct)).Count);

        using var asOther = client.Ship(cancellationToken: Ct);
        await asOther.RequestStream.WriteAsync(new FlowBatch { Node = "node-b", Instance = "agent-1", Sequence = 1, Flows = { TestFlows.Numbered(now, 3) } }, Ct);
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await asOther.ResponseStream.MoveNext(Ct));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        using var fromTheFuture = client.Ship(cancellationToken: Ct);
        await fromTheFuture.RequestStream.WriteAsync(new FlowBatch { Node = "node-a", Instance = "agent-1", Sequence = 2, Flows = { TestFlows.Numbered(now.AddYears(5), 4) } }, Ct);
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await fromTheFuture.ResponseStream.MoveNext(Ct));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Contains("flows[0].time", refused.Status.Detail);
    }
}
