using Mesh.ControlPlane.EventStore;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>Appends under a lease (a row of mesh_leases): refused with nothing stored once the lease moved on or expired.</summary>
public sealed class AppendFencingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Ttl = TimeSpan.FromMilliseconds(400);

    private static async Task TakeAsync(EventStoreDatabase db, string lease, string owner, TimeSpan ttl)
    {
        await using var cmd = db.DataSource.CreateCommand("""
            INSERT INTO mesh_leases (name, owner, expires_at, acquired_at) VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), clock_timestamp())
            ON CONFLICT (name) DO UPDATE SET owner = $2, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at
            """);
        cmd.Parameters.Add(new() { Value = lease });
        cmd.Parameters.Add(new() { Value = owner });
        cmd.Parameters.Add(new() { Value = ttl.TotalSeconds });
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    [Fact]
    public async Task An_append_under_a_lease_that_moved_on_is_refused_and_nothing_is_stored()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await TakeAsync(db, "shard-1", "a", Ttl);
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("ByA")], new LeaseFence("shard-1", "a"), Ct);

        await Task.Delay(Ttl * 1.5, Ct);   // a is paused past its lease; b takes it
        await TakeAsync(db, "shard-1", "b", Ttl * 10);

        var refused = await Assert.ThrowsAsync<LeaseLost>(() =>
            db.Store.AppendAsync("s", 1, [Event("StaleA")], new LeaseFence("shard-1", "a"), Ct));
        Assert.Equal(new LeaseFence("shard-1", "a"), refused.Fence);

        await db.Store.AppendAsync("s", 1, [Event("ByB")], new LeaseFence("shard-1", "b"), Ct);
        Assert.Equal(["ByA", "ByB"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
    }

    [Fact]
    public async Task An_expired_lease_fences_its_holder_even_before_anyone_takes_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await TakeAsync(db, "shard-0", "a", Ttl);

        await Task.Delay(Ttl * 1.5, Ct);

        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("Late")], new LeaseFence("shard-0", "a"), Ct));
        Assert.Empty(await db.Store.ReadStreamAsync("s", ct: Ct));
        Assert.Equal(Mesh.Contracts.Identity.LogPosition.Start, await db.Store.HeadAsync(Ct));
    }

    [Fact]
    public async Task A_takeover_waits_for_an_append_that_read_the_lease_so_the_append_commits_under_the_old_owner_first()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await TakeAsync(db, "shard-2", "a", Ttl * 10);
        await using var conn = await db.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await conn.BeginTransactionAsync(Ct);
        await db.Store.AppendInAsync(tx, "s", ExpectedVersion.NoStream, [Event("ByA")], new LeaseFence("shard-2", "a"), Ct);

        var takeover = TakeAsync(db, "shard-2", "b", Ttl * 10);   // blocks on the row the append read FOR SHARE
        await Task.Delay(300, Ct);
        Assert.False(takeover.IsCompleted, "the lease changed hands while an append under it was open");
        await tx.CommitAsync(Ct);
        await takeover.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", 1, [Event("StaleA")], new LeaseFence("shard-2", "a"), Ct));
        Assert.Equal(["ByA"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
    }

    [Fact]
    public async Task A_lease_that_was_never_taken_fences_every_append()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], new LeaseFence("shard-3", "a"), Ct));
    }
}
