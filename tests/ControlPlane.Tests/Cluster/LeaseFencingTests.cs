using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Tests.EventStore;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>Shard leases in PostgreSQL and the fencing of appends by their epoch.</summary>
public sealed class LeaseFencingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly ClusterOptions Short = new() { Shards = 4, LeaseTtl = TimeSpan.FromMilliseconds(400) };

    private static async Task<LeaseTable> LeasesAsync(EventStoreDatabase db)
    {
        var table = new LeaseTable(db.DataSource, Short);
        await table.EnsureShardsAsync(Ct);
        return table;
    }

    [Fact]
    public async Task A_live_lease_cannot_be_taken_by_another_member()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var leases = await LeasesAsync(db);

        Assert.Equal([(2, 1L)], await leases.AcquireAsync("a", [2], Ct));
        Assert.Empty(await leases.AcquireAsync("b", [2], Ct));
        Assert.Equal(["a"], (await leases.LeasesAsync(Ct)).Where(l => l.Live).Select(l => l.Owner));
    }

    [Fact]
    public async Task An_append_under_a_lease_that_moved_on_is_refused_and_nothing_is_stored()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var leases = await LeasesAsync(db);
        var (_, epoch) = Assert.Single(await leases.AcquireAsync("a", [1], Ct));
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("ByA")], new LeaseFence(1, epoch), Ct);

        await Task.Delay(Short.LeaseTtl * 1.5, Ct);   // a is paused past its lease; b takes the shard
        var (_, newEpoch) = Assert.Single(await leases.AcquireAsync("b", [1], Ct));

        var refused = await Assert.ThrowsAsync<LeaseLost>(() =>
            db.Store.AppendAsync("s", 1, [Event("StaleA")], new LeaseFence(1, epoch), Ct));
        Assert.Equal(new LeaseFence(1, epoch), refused.Fence);
        Assert.Empty(await leases.RenewAsync("a", [(1, epoch)], Ct));   // a learns it lost the shard

        await db.Store.AppendAsync("s", 1, [Event("ByB")], new LeaseFence(1, newEpoch), Ct);
        Assert.Equal(["ByA", "ByB"], (await db.Store.ReadStreamAsync("s", ct: Ct)).Select(e => e.Type));
        Assert.Equal(newEpoch, epoch + 1);
    }

    [Fact]
    public async Task An_expired_lease_fences_its_holder_even_before_anyone_takes_it()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var leases = await LeasesAsync(db);
        var (_, epoch) = Assert.Single(await leases.AcquireAsync("a", [0], Ct));

        await Task.Delay(Short.LeaseTtl * 1.5, Ct);

        await Assert.ThrowsAsync<LeaseLost>(() => db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("Late")], new LeaseFence(0, epoch), Ct));
        Assert.Empty(await db.Store.ReadStreamAsync("s", ct: Ct));
    }

    [Fact]
    public async Task Renewing_keeps_the_lease_and_its_epoch()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var leases = await LeasesAsync(db);
        var (_, epoch) = Assert.Single(await leases.AcquireAsync("a", [3], Ct));

        for (var i = 0; i < 4; i++)
        {
            await Task.Delay(Short.LeaseTtl / 2, Ct);
            Assert.Equal([3], await leases.RenewAsync("a", [(3, epoch)], Ct));
        }

        Assert.Empty(await leases.AcquireAsync("b", [3], Ct));
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("StillA")], new LeaseFence(3, epoch), Ct);
    }

    [Fact]
    public async Task A_released_lease_is_taken_at_once_with_a_new_epoch()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var leases = await LeasesAsync(db);
        var (_, epoch) = Assert.Single(await leases.AcquireAsync("a", [2], Ct));

        await leases.ReleaseAsync("a", [2], Ct);

        Assert.Equal([(2, epoch + 1)], await leases.AcquireAsync("b", [2], Ct));
    }
}
