using Akka.Configuration;
using Akka.Coordination;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Tests.EventStore;
using Microsoft.Extensions.Logging.Abstractions;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>The PostgreSQL lease (expiry on the database's clock, validity on the holder's) and the fencing of appends by it.</summary>
public sealed class LeaseFencingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Ttl = TimeSpan.FromMilliseconds(600);

    private static PostgresLease Lease(EventStoreDatabase db, string owner, string name = "mesh-shard-aggregate-1") =>
        new(new LeaseSettings(name, owner, new TimeoutSettings(Ttl / 4, Ttl, TimeSpan.FromSeconds(5)), ConfigurationFactory.Empty),
            db.DataSource, owner, NullLogger.Instance);

    private static LeaseFence FenceOf(PostgresLease lease) => new(lease.Name, lease.Owner);

    [Fact]
    public async Task A_held_lease_cannot_be_taken_by_another_owner()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        var b = Lease(db, "b#1");

        Assert.True(await a.Acquire());
        Assert.False(await b.Acquire());
        Assert.True(a.CheckLease());
        Assert.False(b.CheckLease());
        await a.Release();
    }

    [Fact]
    public async Task Renewing_keeps_the_lease_past_its_ttl()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        var lost = new TaskCompletionSource<Exception>();
        Assert.True(await a.Acquire(e => lost.TrySetResult(e)));

        await Task.Delay(Ttl * 3, Ct);

        Assert.True(a.CheckLease());
        Assert.False(lost.Task.IsCompleted);
        Assert.False(await Lease(db, "b#1").Acquire());
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("StillA")], FenceOf(a), Ct);
        await a.Release();
    }

    [Fact]
    public async Task A_released_lease_is_taken_at_once_by_another_owner()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        Assert.True(await a.Acquire());

        await a.Release();

        Assert.False(a.CheckLease());
        Assert.True(await Lease(db, "b#1").Acquire());
    }

    [Fact]
    public async Task An_unrenewed_lease_expires_on_the_database_clock_and_its_holder_learns_it_lost_the_lease()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        var lost = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(await a.Acquire(e => lost.TrySetResult(e)));

        // Another incarnation of the same address takes over once the row has expired in the database.
        await db.ScalarAsync("UPDATE mesh_leases SET expires_at = clock_timestamp() WHERE owner = 'a#1'");
        Assert.True(await Lease(db, "a#2").Acquire());

        var reason = await lost.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Contains("no longer held", reason.Message);
        Assert.False(a.CheckLease());
    }

    [Fact]
    public async Task A_holder_that_cannot_renew_stops_holding_within_its_ttl()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        var lost = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        Assert.True(await a.Acquire(e => lost.TrySetResult(e)));
        var acquired = DateTime.UtcNow;

        // Every renewal now waits on a row lock until the TTL has passed: as for a member cut off from the database.
        await using var blocker = await db.DataSource.OpenConnectionAsync(Ct);
        await using var tx = await blocker.BeginTransactionAsync(Ct);
        await using (var cmd = new Npgsql.NpgsqlCommand("SELECT 1 FROM mesh_leases WHERE owner = 'a#1' FOR UPDATE", blocker, tx))
            await cmd.ExecuteNonQueryAsync(Ct);

        var reason = await lost.Task.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.IsType<LeaseTimeoutException>(reason);
        Assert.True(DateTime.UtcNow - acquired < Ttl * 3, $"lost after {(DateTime.UtcNow - acquired).TotalMilliseconds} ms");
        Assert.False(a.CheckLease());
        await tx.RollbackAsync(Ct);
    }

    [Fact]
    public async Task An_append_under_a_lease_that_moved_on_is_refused_and_nothing_is_stored()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        Assert.True(await a.Acquire());
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("ByA")], FenceOf(a), Ct);

        // a is paused past its lease (its renewals stop); b takes the shard.
        await db.ScalarAsync("UPDATE mesh_leases SET expires_at = clock_timestamp() WHERE owner = 'a#1'");
        var b = Lease(db, "b#1");
        Assert.True(await b.Acquire());

        var refused = await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", 1, [Event("StaleA")], FenceOf(a), Ct));
        Assert.Equal(FenceOf(a), refused.Fence);

        await db.Store.AppendAsync("s", 1, [Event("ByB")], FenceOf(b), Ct);
        Assert.Equal(["ByA", "ByB"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(Tag));
        await b.Release();
    }

    [Fact]
    public async Task An_expired_lease_fences_its_holder_even_before_anyone_takes_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var a = Lease(db, "a#1");
        Assert.True(await a.Acquire());
        await a.Release();   // renewals stop; the row names no owner now
        await db.ScalarAsync("UPDATE mesh_leases SET owner = 'a#1', expires_at = clock_timestamp() - interval '1 ms'");

        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("Late")], FenceOf(a), Ct));
        Assert.Empty(await db.Store.ReadStreamAsync("s", ct: Ct));
    }

    [Fact]
    public async Task Replicas_starting_at_once_all_create_the_lease_table_without_error()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Lease(db, $"r{i}#1", $"lease-{i}").Acquire()));
        Assert.Equal(8, await db.ScalarAsync("SELECT count(*) FROM mesh_leases"));
    }
}
