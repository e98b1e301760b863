using Mesh.Contracts.Identity;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.ControlPlane.Tests.EventStore;
using Npgsql;
using static Mesh.ControlPlane.Tests.EventStore.EventBuilders;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class ProjectionRunnerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_restarted_runner_resumes_at_its_checkpoint_with_no_duplicates_and_no_gaps()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("a", ExpectedVersion.Any, Numbered("Counted", 1, 120), ct: Ct);
        await using (var first = await RunnerProbe.StartAsync(db))
        {
            await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(120));
            await first.StopAsync();
            first.AssertNoFailures();
        }
        // Written while no runner was running: the next one must start exactly after 120.
        await db.Store.AppendAsync("b", ExpectedVersion.Any, Numbered("Counted", 1, 80), ct: Ct);

        await using var second = await RunnerProbe.StartAsync(db);
        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(200));
        var rows = await RunnerProbe.AuditRowsAsync(db.DataSource);
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), rows.Select(r => r.Position));
        Assert.Equal(await db.ScalarAsync($"SELECT count(*) FROM {EventStoreSchema.EventsTable}"), rows.Count);
        second.AssertNoFailures();
    }

    [Fact]
    public async Task The_checkpoint_moves_with_the_rows_so_a_batch_that_fails_leaves_neither()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("a", ExpectedVersion.Any, Numbered("Counted", 1, 10), ct: Ct);
        // A row the projection will collide with at position 7: every batch holding 7 fails and rolls back.
        await using (var plant = db.DataSource.CreateCommand(
            $"INSERT INTO {EventStoreSchema.AuditTable} VALUES (7, now(), 'x', 'x', NULL, 'x', 'x', 'planted')"))
            await plant.ExecuteNonQueryAsync(Ct);

        await using var runner = await RunnerProbe.StartAsync(db);
        await WaitUntilAsync(() => runner.Failures.Count >= 2);
        var checkpoint = await db.ScalarAsync($"SELECT position FROM {EventStoreSchema.CheckpointsTable}");
        Assert.True(checkpoint < 7, $"checkpoint {checkpoint} passed the failing event");
        Assert.Equal(checkpoint + 1, await db.ScalarAsync($"SELECT count(*) FROM {EventStoreSchema.AuditTable}"));

        await using (var remove = db.DataSource.CreateCommand($"DELETE FROM {EventStoreSchema.AuditTable} WHERE summary = 'planted'"))
            await remove.ExecuteNonQueryAsync(Ct);
        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(10));
        Assert.Equal(10, (await RunnerProbe.AuditRowsAsync(db.DataSource)).Count);
    }

    [Fact]
    public async Task Two_runners_on_one_database_write_each_audit_row_exactly_once()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("early", ExpectedVersion.Any, Numbered("Counted", 1, 300), ct: Ct);
        await using var otherReplica = NpgsqlDataSource.Create(db.DataSource.ConnectionString);
        await using var a = await RunnerProbe.StartAsync(db);
        await using var b = await RunnerProbe.StartAsync(db, otherReplica);

        // Live appends from several writers while both runners follow.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(async w =>
        {
            for (var i = 0; i < 50; i++)
                await db.Store.AppendAsync($"w{w}", ExpectedVersion.Any, [Event("Counted", $$"""{"n":{{i}}}""")], ct: Ct);
        }));

        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(500));
        await a.StopAsync();
        await b.StopAsync();
        var rows = await RunnerProbe.AuditRowsAsync(db.DataSource);
        Assert.Equal(Enumerable.Range(1, 500).Select(i => (long)i), rows.Select(r => r.Position));
        a.AssertNoFailures();
        b.AssertNoFailures();
    }

    [Fact]
    public async Task A_runner_survives_the_loss_of_all_its_connections_and_misses_nothing()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await using var runner = await RunnerProbe.StartAsync(db);
        // The writer stands for other clients of the database: its connections are spared, the runner's are not.
        await using var admin = NpgsqlDataSource.Create(
            new NpgsqlConnectionStringBuilder(db.DataSource.ConnectionString) { ApplicationName = "writer" }.ConnectionString);
        var writer = new PostgresEventStore(admin);

        var last = LogPosition.Start;
        var killed = 0L;
        for (var round = 0; round < 8; round++)
        {
            last = await writer.AppendAsync("s", ExpectedVersion.Any, Numbered("Counted", round * 25, 25), ct: Ct);
            // What a database restart does to the runner: every one of its connections ends mid-flight.
            await using var kill = admin.CreateCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'writer'");
            killed += (long)(await kill.ExecuteScalarAsync(Ct))!;
            await Task.Delay(100, Ct);
        }
        Assert.True(killed >= 5, $"only {killed} of the runner's connections were ended");

        await RunnerProbe.WaitForCheckpointAsync(admin, last);
        var rows = await RunnerProbe.AuditRowsAsync(admin);
        Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), rows.Select(r => r.Position));
    }

    [Fact]
    public async Task Rebuilding_from_zero_gives_back_the_same_rows()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        var head = await DomainEvents.AppendHistoryAsync(db.Store, 150);
        await using var runner = await RunnerProbe.StartAsync(db);
        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, head);
        var before = await RunnerProbe.AuditRowsAsync(db.DataSource);

        Assert.True(await runner.Runner.RebuildAsync(AuditProjection.ProjectionName, Ct));
        Assert.False(await runner.Runner.RebuildAsync("no-such-projection", Ct));

        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, head);
        Assert.Equal(before, await RunnerProbe.AuditRowsAsync(db.DataSource));
        runner.AssertNoFailures();
    }

    [Fact]
    public async Task A_rebuild_on_one_replica_while_another_applies_live_events_leaves_every_row_once()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("early", ExpectedVersion.Any, Numbered("Counted", 1, 400), ct: Ct);
        await using var otherReplica = NpgsqlDataSource.Create(db.DataSource.ConnectionString);
        await using var a = await RunnerProbe.StartAsync(db);
        await using var b = await RunnerProbe.StartAsync(db, otherReplica);
        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(400));

        var writing = Task.Run(async () =>
        {
            for (var i = 0; i < 200; i++)
                await db.Store.AppendAsync("live", ExpectedVersion.Any, [Event("Counted", $$"""{"n":{{i}}}""")], ct: Ct);
        }, Ct);
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(40, Ct);
            Assert.True(await a.Runner.RebuildAsync(AuditProjection.ProjectionName, Ct));
        }
        await writing;

        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(600));
        var rows = await RunnerProbe.AuditRowsAsync(db.DataSource);
        Assert.Equal(Enumerable.Range(1, 600).Select(i => (long)i), rows.Select(r => r.Position));
        a.AssertNoFailures();
        b.AssertNoFailures();
    }

    [Fact]
    public async Task An_event_of_a_type_this_build_does_not_know_is_audited_by_its_type_name()
    {
        await using var db = await EventStoreDatabase.CreateAsync();
        await db.Store.AppendAsync("future", ExpectedVersion.Any, [Event("NodeCordoned", """{"node":"n1"}""", principal: "carol")], ct: Ct);
        await DomainEvents.AppendAsync(db.Store, "policy-x/a", DomainEvents.PolicyDeleted("x", "a"));
        await using var runner = await RunnerProbe.StartAsync(db);

        await RunnerProbe.WaitForCheckpointAsync(db.DataSource, new LogPosition(2));
        var rows = await RunnerProbe.AuditRowsAsync(db.DataSource);
        Assert.Equal(["NodeCordoned", "deleted policy x/a"], rows.Select(r => r.Summary));
        Assert.Equal(("carol", "future", "NodeCordoned"), (rows[0].Principal, rows[0].StreamId, rows[0].Type));
        runner.AssertNoFailures();
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(TimeSpan.FromSeconds(20));
        while (!condition()) await Task.Delay(20, cts.Token);
    }
}
