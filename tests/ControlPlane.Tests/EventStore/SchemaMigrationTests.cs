using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.EventStore;

public sealed class SchemaMigrationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Migrating_again_keeps_the_events_and_records_each_version_once()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct);

        await EventStoreSchema.MigrateAsync(db.DataSource, Ct);
        await EventStoreSchema.MigrateAsync(db.DataSource, Ct);

        Assert.Equal(new LogPosition(1), await db.Store.HeadAsync(Ct));
        Assert.Equal(EventStoreSchema.LatestVersion, await db.ScalarAsync("SELECT count(*) FROM mesh_events_migrations"));
    }

    [Fact]
    public async Task Migrations_started_at_once_from_several_tasks_all_succeed_and_apply_once()
    {
        await using var db = await EventStoreDatabase.CreateAsync(migrate: false);

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => EventStoreSchema.MigrateAsync(db.DataSource, Ct), Ct)));

        Assert.Equal(EventStoreSchema.LatestVersion, await db.ScalarAsync("SELECT count(*) FROM mesh_events_migrations"));
        Assert.Equal(new LogPosition(1), await db.Store.AppendAsync("s", ExpectedVersion.NoStream, [Event("A")], ct: Ct));
    }
}
