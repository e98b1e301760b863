using Mesh.ControlPlane.EventStore;
using Mesh.Testing;
using Npgsql;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>A fresh, migrated database with an event store on it, for one test. Subscriptions poll fast so a missed wake-up shows as slowness, not a hang.</summary>
internal sealed class EventStoreDatabase : IAsyncDisposable
{
    public static readonly EventStoreOptions FastOptions = new()
    {
        PollInterval = TimeSpan.FromMilliseconds(200),
        ReconnectDelay = TimeSpan.FromMilliseconds(50),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
    };

    private readonly PostgresDatabase _database;

    private EventStoreDatabase(PostgresDatabase database, NpgsqlDataSource dataSource, EventStoreOptions options)
    {
        _database = database;
        DataSource = dataSource;
        Store = new PostgresEventStore(dataSource, options);
    }

    public NpgsqlDataSource DataSource { get; }
    public string ConnectionString => _database.ConnectionString;
    public PostgresEventStore Store { get; }

    public static async Task<EventStoreDatabase> CreateAsync(EventStoreOptions? options = null, bool migrate = true)
    {
        var database = new PostgresDatabase();
        await database.InitializeAsync();
        var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
        if (migrate) await EventStoreSchema.MigrateAsync(dataSource, TestContext.Current.CancellationToken);
        return new EventStoreDatabase(database, dataSource, options ?? FastOptions);
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        await _database.DisposeAsync();
    }
}

/// <summary>Tiny builders so each test shows only what matters to it.</summary>
internal static class EventBuilders
{
    public static readonly DateTimeOffset Now = new(2026, 11, 21, 14, 2, 0, TimeSpan.FromHours(1));

    public static EventData Event(string type, string json = """{"n":1}""", string principal = "alice") =>
        new(type, json, new EventMetadata(principal, Now, "corr-1", CausationId: null));

    public static EventData[] Numbered(string type, int from, int count) =>
        [.. Enumerable.Range(from, count).Select(i => Event(type, $$"""{"n":{{i}}}"""))];
}
