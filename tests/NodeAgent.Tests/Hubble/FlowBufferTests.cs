using Mesh.NodeAgent.Hubble;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;

namespace Mesh.NodeAgent.Tests.Hubble;

public sealed class FlowBufferTests
{
    private static FlowMessage Flow(int n) => new() { Uuid = $"flow-{n}" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void A_full_buffer_drops_its_oldest_flows_and_counts_every_flow_it_saw()
    {
        var buffer = new FlowBuffer(3);
        for (var i = 0; i < 5; i++) buffer.Add(Flow(i));

        Assert.Equal(["flow-2", "flow-3", "flow-4"], buffer.Snapshot().Select(f => f.Uuid));
        Assert.Equal((3, 3, 5L), (buffer.Count, buffer.Capacity, buffer.Seen));
    }

    [Fact]
    public void Flows_larger_than_the_bytes_per_flow_push_the_oldest_out_sooner_and_come_back_whole()
    {
        var buffer = new FlowBuffer(200);   // 200 × 512 bytes
        FlowMessage Large(int n) => new() { Uuid = $"flow-{n}", Summary = new string((char)('a' + n % 26), 2_000) };
        for (var i = 0; i < 100; i++) buffer.Add(Large(i));

        // About 2 KB each: the bytes hold about fifty, the newest, in order, each as it was added; a write that would
        // wrap starts over at the beginning, so the oldest held is never half overwritten.
        var held = buffer.Snapshot();
        Assert.InRange(held.Count, 45, 51);
        Assert.Equal(Enumerable.Range(100 - held.Count, held.Count).Select(Large), held);
        Assert.Equal(100L, buffer.Seen);

        buffer.Add(new FlowMessage { Uuid = "huge", Summary = new string('x', 200 * FlowBuffer.BytesPerFlow) });
        Assert.Empty(buffer.Snapshot());   // larger than the whole buffer: neither it nor anything older is held
        buffer.Add(Flow(1));
        Assert.Equal(["flow-1"], buffer.Snapshot().Select(f => f.Uuid));
        Assert.Equal((1, 102L), (buffer.Count, buffer.Seen));
    }

    [Fact]
    public async Task A_follower_gets_the_flows_added_after_its_snapshot_and_none_twice()
    {
        var buffer = new FlowBuffer(10);
        buffer.Add(Flow(0));
        var (held, follower) = buffer.SnapshotAndFollow();
        using (follower)
        {
            buffer.Add(Flow(1));
            buffer.Add(Flow(2));

            Assert.Equal(["flow-0"], held.Select(f => f.Uuid));
            var followed = await follower.ReadAllAsync(Ct).Take(2).Select(f => f.Flow!.Uuid).ToListAsync(Ct);
            Assert.Equal(["flow-1", "flow-2"], followed);
        }
        buffer.Add(Flow(3));   // after the follower left: nobody to offer it to
        Assert.Equal(4L, buffer.Seen);
    }

    [Fact]
    public async Task A_follower_that_does_not_read_loses_flows_without_holding_back_the_writer_and_hears_how_many_in_order_and_the_buffer_counts_them()
    {
        var buffer = new FlowBuffer(100, followerQueue: 2);
        var (_, follower) = buffer.SnapshotAndFollow();
        using (follower)
        {
            for (var i = 0; i < 5; i++) buffer.Add(Flow(i));   // returns at once although nobody reads
            var first = await follower.ReadAllAsync(Ct).Take(3).ToListAsync(Ct);
            buffer.Add(Flow(5));
            var next = await follower.ReadAllAsync(Ct).Take(1).ToListAsync(Ct);

            Assert.Equal([new Followed(Flow(0), 0), new Followed(Flow(1), 0), new Followed(null, 3)], first);
            Assert.Equal([new Followed(Flow(5), 0)], next);
            Assert.Equal(3, buffer.LostByFollowers);
        }
    }

    [Fact]
    public async Task A_loss_is_reported_after_the_flows_queued_before_it_and_before_those_queued_after_it()
    {
        var buffer = new FlowBuffer(100, followerQueue: 2);
        var (_, follower) = buffer.SnapshotAndFollow();
        using (follower)
        {
            for (var i = 0; i < 4; i++) buffer.Add(Flow(i));   // 0 and 1 queued, 2 and 3 lost
            var reader = follower.ReadAllAsync(Ct).GetAsyncEnumerator(Ct);
            Assert.True(await reader.MoveNextAsync());
            buffer.Add(Flow(4));   // room for the loss marker, not yet for the flow: lost again
            var rest = new List<Followed> { reader.Current };
            for (var i = 0; i < 3 && await reader.MoveNextAsync(); i++) rest.Add(reader.Current);
            await reader.DisposeAsync();

            Assert.Equal([new Followed(Flow(0), 0), new Followed(Flow(1), 0), new Followed(null, 2), new Followed(null, 1)], rest);
        }
    }
}
