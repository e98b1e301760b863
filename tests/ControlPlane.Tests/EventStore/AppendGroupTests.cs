using Mesh.ControlPlane.EventStore;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>
/// Appends that queue while a transaction holds the append lock are committed together in the next one, and each
/// is still judged on its own: a stale version, a lost lease or a cancelled caller refuses that append alone.
/// </summary>
public sealed class AppendGroupTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Appends_queued_behind_the_lock_commit_in_one_transaction_and_a_refused_one_takes_none_of_the_others_with_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("stale", ExpectedVersion.NoStream, [Event("First")], ct: Ct);

        await using var held = await HeldLock.TakeAsync(db);

        using var cancelled = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var a = db.Store.AppendAsync("a", ExpectedVersion.NoStream, [Event("A1"), Event("A2", principal: "bob")], ct: Ct);
        var stale = db.Store.AppendAsync("stale", ExpectedVersion.NoStream, [Event("Stale")], ct: Ct);
        var fenced = db.Store.AppendAsync("fenced", ExpectedVersion.NoStream, [Event("Fenced")], new LeaseFence("shard-9", "nobody"), Ct);
        var gone = db.Store.AppendAsync("gone", ExpectedVersion.NoStream, [Event("Gone")], ct: cancelled.Token);
        var b = db.Store.AppendAsync("b", ExpectedVersion.Any, [Event("B")], ct: Ct);
        await cancelled.CancelAsync();

        await held.ReleaseAsync();
        var (atA, atB) = (await a.WaitAsync(TimeSpan.FromSeconds(10), Ct), await b.WaitAsync(TimeSpan.FromSeconds(10), Ct));
        var conflict = await Assert.ThrowsAsync<StreamVersionConflict>(() => stale);
        Assert.Equal((0L, 1L), (conflict.Expected, conflict.Actual));
        await Assert.ThrowsAsync<LeaseLost>(() => fenced);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gone);

        Assert.Empty(await db.Store.ReadStreamAsync("fenced", ct: Ct));
        Assert.Empty(await db.Store.ReadStreamAsync("gone", ct: Ct));
        Assert.Equal(["First"], (await db.Store.ReadStreamAsync("stale", ct: Ct)).Select(Tag));
        var streamA = await db.Store.ReadStreamAsync("a", ct: Ct);
        Assert.Equal(["A1", "A2"], streamA.Select(Tag));
        Assert.Equal(["alice", "bob"], streamA.Select(e => e.Metadata.Principal));   // metadata per event, not per group
        Assert.True(atA < atB, "positions follow the order the appends arrived in");
        Assert.Equal(1, await db.ScalarAsync("SELECT count(DISTINCT xmin::text) FROM mt_events WHERE stream_id IN ('a', 'b')"));
    }

    [Fact]
    public async Task Two_appends_to_one_stream_never_share_a_group_so_the_second_sees_the_first()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await using var held = await HeldLock.TakeAsync(db);

        var first = db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("One")], ct: Ct);
        var second = db.Store.AppendAsync("s", 1, [Event("Two")], ct: Ct);
        await held.ReleaseAsync();

        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(["One", "Two"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
    }

    /// <summary>
    /// A transaction that holds the append lock, and one append that has taken up the next group and waits for it:
    /// every append made while this is held queues for the group after that one.
    /// </summary>
    private sealed class HeldLock(Npgsql.NpgsqlConnection connection, Npgsql.NpgsqlTransaction tx, Task waiting) : IAsyncDisposable
    {
        public static async Task<HeldLock> TakeAsync(EventStoreDatabase db)
        {
            var connection = await db.DataSource.OpenConnectionAsync(Ct);
            var tx = await connection.BeginTransactionAsync(Ct);
            await db.Store.AppendInAsync(tx, "slow", ExpectedVersion.NoStream, [Event("Slow")], fence: null, Ct);
            var waiting = db.Store.AppendAsync("waiting", ExpectedVersion.NoStream, [Event("Waiting")], ct: Ct);
            await WaitForLockWaitersAsync(db, 1);
            return new HeldLock(connection, tx, waiting);
        }

        /// <summary>Commits the holder and waits for the append that waited behind it.</summary>
        public async Task ReleaseAsync()
        {
            await tx.CommitAsync(Ct);
            await waiting.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        }

        public async ValueTask DisposeAsync()
        {
            await tx.DisposeAsync();
            await connection.DisposeAsync();
        }
    }

    /// <summary>Waits until <paramref name="count"/> sessions wait for the append lock (an event, not a guess at a duration).</summary>
    private static async Task WaitForLockWaitersAsync(EventStoreDatabase db, int count)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        while (await db.ScalarAsync("""
            SELECT count(*) FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """) < count)
            await Task.Delay(10, deadline.Token);
    }
}
