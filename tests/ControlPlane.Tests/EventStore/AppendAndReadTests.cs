using System.Text.Json.Nodes;
using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using Mesh.ControlPlane.Policies;
using Mesh.Contracts.Policies;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

public sealed class AppendAndReadTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_append_without_a_fence_needs_no_lease_table()
    {
        // A fresh database, before any replica took a lease: tools and single processes append unfenced.
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.ScalarAsync("DROP TABLE mesh_leases");

        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("First")], null, Ct);

        Assert.Equal(["First"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
    }

    [Fact]
    public async Task Appended_events_read_back_in_stream_order_with_their_body_and_metadata()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var metadata = new EventMetadata("alice@example", Now, "corr-42", "cmd-7");
        EventData[] events =
        [
            new("PolicyDeleted", """{"namespace": "default", "name": "allow-web", "kind": "CiliumNetworkPolicy"}""", metadata),
            new("TestEvent", """{"tag":"second","n":2}""", metadata with { CausationId = null }),
        ];

        var last = await db.Store.AppendAsync("policy-default/allow-web", ExpectedVersion.NoStream, events, ct: Ct);
        var read = await db.Store.ReadStreamAsync("policy-default/allow-web", ct: Ct);

        Assert.Equal(new LogPosition(2), last);
        Assert.Equal([1L, 2L], read.Select(e => e.StreamVersion));
        Assert.Equal([new LogPosition(1), new LogPosition(2)], read.Select(e => e.Position));
        Assert.Equal(["PolicyDeleted", "TestEvent"], read.Select(e => e.Type));
        Assert.All(read, e => Assert.Equal("policy-default/allow-web", e.StreamId));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(events[0].Json), JsonNode.Parse(read[0].Json)), read[0].Json);
        Assert.Equal(new PolicyEvent.PolicyDeleted("default", "allow-web", PolicyKind.CiliumNetworkPolicy), read[0].Body);
        Assert.Equal(metadata, read[0].Metadata);
        Assert.Equal(metadata with { CausationId = null }, read[1].Metadata);
        // The global log (its own statement over Marten's table) reads them exactly as Marten's stream read does.
        Assert.Equal(read, await db.Store.ReadAllAsync(LogPosition.Start, 10, Ct));
    }

    [Fact]
    public async Task Reading_a_stream_that_does_not_exist_returns_no_events()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("other", ExpectedVersion.NoStream, [Event("A")], ct: Ct);

        Assert.Empty(await db.Store.ReadStreamAsync("missing", ct: Ct));
    }

    [Fact]
    public async Task Appending_at_a_stale_version_throws_StreamVersionConflict_and_stores_nothing_of_the_batch()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, Numbered("A", 1, 3), ct: Ct);

        var conflict = await Assert.ThrowsAsync<StreamVersionConflict>(
            () => db.Store.AppendAsync("s", expectedVersion: 1, Numbered("B", 1, 4), ct: Ct));

        Assert.Equal(("s", 1L, 3L), (conflict.StreamId, conflict.Expected, conflict.Actual));
        Assert.Equal(["A", "A", "A"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
        Assert.Equal(new LogPosition(3), await db.Store.HeadAsync(Ct));
    }

    [Fact]
    public async Task Appending_beyond_the_current_version_conflicts_rather_than_leaving_a_hole()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct);

        var conflict = await Assert.ThrowsAsync<StreamVersionConflict>(
            () => db.Store.AppendAsync("s", expectedVersion: 5, [Event("B")], ct: Ct));

        Assert.Equal((5L, 1L), (conflict.Expected, conflict.Actual));
        Assert.Single(await db.Store.ReadStreamAsync("s", ct: Ct));
    }

    [Fact]
    public async Task Starting_the_same_new_stream_twice_makes_the_second_conflict()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("identity-42", ExpectedVersion.NoStream, [Event("IdentityAllocated")], ct: Ct);

        var conflict = await Assert.ThrowsAsync<StreamVersionConflict>(
            () => db.Store.AppendAsync("identity-42", ExpectedVersion.NoStream, [Event("IdentityAllocated")], ct: Ct));

        Assert.Equal((0L, 1L), (conflict.Expected, conflict.Actual));
    }

    [Fact]
    public async Task Racing_starts_of_one_new_stream_let_exactly_one_win()
    {
        await using var db = await EventStoreDatabase.CreateAsync();

        var attempts = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try { await db.Store.AppendAsync("identity-7", ExpectedVersion.NoStream, [Event("IdentityAllocated", principal: $"replica-{i}")], ct: Ct); return true; }
            catch (StreamVersionConflict) { return false; }
        }));

        Assert.Single(attempts, won => won);
        Assert.Single(await db.Store.ReadStreamAsync("identity-7", ct: Ct));
    }

    [Fact]
    public async Task Appending_with_any_version_goes_after_whatever_the_stream_holds()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.Any, [Event("A")], ct: Ct);
        await db.Store.AppendAsync("s", ExpectedVersion.Any, [Event("B"), Event("C")], ct: Ct);

        Assert.Equal([1L, 2L, 3L], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(e => e.StreamVersion));
    }

    [Fact]
    public async Task A_batch_with_one_invalid_body_or_unknown_type_is_refused_whole()
    {
        await using var db = await EventStoreDatabase.CreateAsync();

        await Assert.ThrowsAsync<ArgumentException>(
            () => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A"), Event("B") with { Body = null, Json = "{not json" }], ct: Ct));
        await Assert.ThrowsAsync<ArgumentException>(
            () => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A"), Event("B") with { Type = "NodeCordoned" }], ct: Ct));

        Assert.Empty(await db.Store.ReadStreamAsync("s", ct: Ct));
        Assert.Equal(LogPosition.Start, await db.Store.HeadAsync(Ct));
    }

    [Fact]
    public async Task An_append_without_events_is_refused()
    {
        await using var db = await EventStoreDatabase.CreateAsync();

        await Assert.ThrowsAsync<ArgumentException>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [], ct: Ct));
    }

    [Fact]
    public async Task ReadAll_returns_every_stream_interleaved_in_append_order_after_the_given_position()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("a", ExpectedVersion.NoStream, [Event("A1")], ct: Ct);
        await db.Store.AppendAsync("b", ExpectedVersion.NoStream, [Event("B1"), Event("B2")], ct: Ct);
        await db.Store.AppendAsync("a", 1, [Event("A2")], ct: Ct);
        await db.Store.AppendAsync("c", ExpectedVersion.NoStream, [Event("C1")], ct: Ct);

        var all = await db.Store.ReadAllAsync(LogPosition.Start, 100, Ct);
        var page = await db.Store.ReadAllAsync(new LogPosition(1), maxCount: 2, Ct);

        Assert.Equal(["A1", "B1", "B2", "A2", "C1"], all.Select(Tag));
        Assert.Equal([1L, 2L, 3L, 4L, 5L], all.Select(e => e.Position.Value));
        Assert.Equal(["B1", "B2"], page.Select(Tag));
        Assert.Empty(await db.Store.ReadAllAsync(new LogPosition(5), 100, Ct));
    }

    [Fact]
    public async Task Head_is_the_start_on_an_empty_log_and_then_the_position_of_the_last_append()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        Assert.Equal(LogPosition.Start, await db.Store.HeadAsync(Ct));

        await db.Store.AppendAsync("a", ExpectedVersion.NoStream, Numbered("A", 1, 3), ct: Ct);
        var last = await db.Store.AppendAsync("b", ExpectedVersion.NoStream, [Event("B")], ct: Ct);

        Assert.Equal(new LogPosition(4), last);
        Assert.Equal(last, await db.Store.HeadAsync(Ct));
    }

    [Fact]
    public async Task Positions_only_grow_and_a_refused_append_takes_none()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct);
        await Assert.ThrowsAsync<StreamVersionConflict>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("B")], ct: Ct));
        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", 1, [Event("B")], new LeaseFence("shard-1", "nobody"), Ct));

        var next = await db.Store.AppendAsync("s", 1, [Event("C")], ct: Ct);

        Assert.Equal(new LogPosition(2), next);
    }
}
