using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using Npgsql;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

public sealed class SubscriptionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_live_subscriber_gets_every_event_of_many_concurrent_appenders_exactly_once_in_order_without_gaps()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("start", ExpectedVersion.NoStream, [Event("Start")], ct: Ct);
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);
        await subscriber.NextAsync(1, Patience);   // caught up and live before anyone appends

        const int appenders = 8, eventsEach = 200;
        int[] batchSizes = [1, 1, 3, 5, 2];
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            // Six appenders own a stream and check its version; two share one stream and append at any version.
            var shared = a >= 6;
            var stream = shared ? "shared" : $"stream-{a}";
            long version = 0;
            for (int sent = 0, i = 0; sent < eventsEach; i++)
            {
                var size = Math.Min(batchSizes[(a + i) % batchSizes.Length], eventsEach - sent);
                await db.Store.AppendAsync(stream, shared ? ExpectedVersion.Any : version, Numbered($"A{a}", sent, size), ct: Ct);
                version += size;
                sent += size;
            }
        }, Ct)));

        var delivered = await subscriber.NextAsync(appenders * eventsEach, Patience);
        await subscriber.AssertNothingMoreWithin(TimeSpan.FromMilliseconds(500));

        Assert.Equal(Enumerable.Range(2, appenders * eventsEach).Select(p => (long)p), delivered.Select(e => e.Position.Value));
        Assert.Equal(
            (await db.Store.ReadAllAsync(new LogPosition(1), 10_000, Ct)).Select(e => (e.Position, e.StreamId, e.StreamVersion)),
            delivered.Select(e => (e.Position, e.StreamId, e.StreamVersion)));
        foreach (var stream in delivered.GroupBy(e => e.StreamId))
            Assert.Equal(Enumerable.Range(1, stream.Count()).Select(v => (long)v), stream.Select(e => e.StreamVersion));
        foreach (var appender in delivered.GroupBy(Tag))
            Assert.Equal(Enumerable.Range(0, eventsEach), appender.Select(N));
    }

    [Fact]
    public async Task A_late_subscriber_catches_up_from_its_position_then_goes_live()
    {
        await using var db = await EventStoreDatabase.CreateAsync(EventStoreDatabase.FastOptions with { SubscriptionBatchSize = 7 });
        await db.Store.AppendAsync("history", ExpectedVersion.NoStream, Numbered("Old", 1, 50), ct: Ct);

        await using var subscriber = new SubscriberProbe(db.Store, after: new LogPosition(10));
        var history = await subscriber.NextAsync(40, Patience);
        await db.Store.AppendAsync("history", 50, Numbered("New", 51, 3), ct: Ct);
        var live = await subscriber.NextAsync(3, Patience);

        Assert.Equal(Enumerable.Range(11, 40).Select(p => (long)p), history.Select(e => e.Position.Value));
        Assert.Equal([51L, 52L, 53L], live.Select(e => e.Position.Value));
        Assert.All(live, e => Assert.Equal("New", Tag(e)));
    }

    [Fact]
    public async Task A_reader_that_stops_during_a_catch_up_ends_promptly_and_the_next_one_resumes_exactly_there()
    {
        // Two full batches: after each the subscription starts reading the next one ahead. After the second that read
        // finds nothing and waits for the poll (5 minutes); stopping must not wait with it.
        await using var db = await EventStoreDatabase.CreateAsync(EventStoreDatabase.FastOptions with
            { SubscriptionBatchSize = 7, PollInterval = TimeSpan.FromMinutes(5) });
        await db.Store.AppendAsync("history", ExpectedVersion.NoStream, Numbered("Old", 1, 14), ct: Ct);

        var taken = new List<long>();
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await foreach (var e in db.Store.SubscribeAllAsync(LogPosition.Start, Ct))
        {
            taken.Add(e.Position.Value);
            if (taken.Count == 14) { stopping.Restart(); break; }
        }
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(10), $"stopping took {stopping.Elapsed}");

        await db.Store.AppendAsync("history", 14, Numbered("New", 15, 3), ct: Ct);
        await using var next = new SubscriberProbe(db.Store, after: new LogPosition(10));
        Assert.Equal(Enumerable.Range(11, 7).Select(p => (long)p), (await next.NextAsync(7, Patience)).Select(e => e.Position.Value));
        Assert.Equal(Enumerable.Range(1, 14).Select(p => (long)p), taken);
    }

    [Fact]
    public async Task A_notification_wakes_the_subscriber_long_before_its_poll_interval()
    {
        await using var db = await EventStoreDatabase.CreateAsync(EventStoreDatabase.FastOptions with { PollInterval = TimeSpan.FromMinutes(5) });
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);
        await Task.Delay(300, Ct);   // let it find the log empty and start waiting

        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct);

        Assert.Equal("A", Tag((await subscriber.NextAsync(1, TimeSpan.FromSeconds(10)))[0]));
    }

    [Fact]
    public async Task An_event_committed_without_a_notification_is_still_delivered_by_the_poll()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);
        await Task.Delay(300, Ct);

        // A writer whose Marten sends no notification: the stand-in for a notification lost while the listening
        // connection was down.
        using (var silentMarten = EventStoreDatabase.CreateDocumentStore(db.DataSource, o => o.Events.UseListenNotifyForEventAppends = false))
            await new MartenEventStore(silentMarten, db.DataSource, EventStoreDatabase.Types).AppendAsync("s", ExpectedVersion.NoStream, [Event("Silent")], ct: Ct);

        Assert.Equal("Silent", Tag((await subscriber.NextAsync(1, TimeSpan.FromSeconds(10)))[0]));
    }

    [Fact]
    public async Task Cancelling_ends_the_subscription_promptly_even_while_it_waits()
    {
        await using var db = await EventStoreDatabase.CreateAsync(EventStoreDatabase.FastOptions with { PollInterval = TimeSpan.FromMinutes(5) });
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct);
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);
        await subscriber.NextAsync(1, Patience);

        subscriber.Stop();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => subscriber.Completion.WaitAsync(TimeSpan.FromSeconds(5), Ct));
    }

    [Fact]
    public async Task A_subscriber_survives_the_loss_of_all_its_connections_and_resumes_after_the_last_delivered_event()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, Numbered("Before", 1, 10), ct: Ct);
        await using var subscriber = new SubscriberProbe(db.Store, LogPosition.Start);
        var before = await subscriber.NextAsync(10, Patience);
        await Task.Delay(100, Ct);   // waiting on its notification connection now

        // What a PostgreSQL restart does to every open session of this database.
        Assert.True(await db.ScalarAsync(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()") >= 1);

        await using (var writerSource = NpgsqlDataSource.Create(db.DataSource.ConnectionString))
            await db.OtherReplica(writerSource).AppendAsync("s", 10, Numbered("After", 11, 10), ct: Ct);
        var after = await subscriber.NextAsync(10, Patience);
        await subscriber.AssertNothingMoreWithin(TimeSpan.FromMilliseconds(500));

        Assert.Equal(Enumerable.Range(1, 20).Select(p => (long)p), before.Concat(after).Select(e => e.Position.Value));
        Assert.False(subscriber.Completion.IsCompleted);
    }
}
