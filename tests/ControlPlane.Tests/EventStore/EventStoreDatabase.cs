using JasperFx.Events.Daemon;
using Marten;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using Mesh.Testing;
using Npgsql;

namespace Mesh.ControlPlane.Tests.EventStore;

/// <summary>A fresh database with Marten and an event store on it, for one test. Subscriptions poll fast so a missed wake-up shows as slowness, not a hang.</summary>
internal sealed class EventStoreDatabase : IAsyncDisposable
{
    public static readonly EventStoreOptions FastOptions = new()
    {
        PollInterval = TimeSpan.FromMilliseconds(200),
        ReconnectDelay = TimeSpan.FromMilliseconds(50),
        MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
    };

    /// <summary>The domain's event types and the tests' own.</summary>
    public static readonly EventTypes Types = new([.. EventCodec.Types, typeof(TestEvent)]);

    /// <summary>The lease table exactly as the cluster creates it.</summary>
    public const string LeasesDdl = Mesh.ControlPlane.Cluster.PostgresLease.CreateTableSql;

    private readonly PostgresDatabase _database;

    private EventStoreDatabase(PostgresDatabase database, NpgsqlDataSource dataSource, EventStoreOptions options)
    {
        _database = database;
        DataSource = dataSource;
        Documents = CreateDocumentStore(dataSource);
        Store = new MartenEventStore(Documents, dataSource, Types, options);
    }

    public NpgsqlDataSource DataSource { get; }
    public string ConnectionString => _database.ConnectionString;
    public DocumentStore Documents { get; }
    public MartenEventStore Store { get; }

    /// <summary>Marten as the control plane configures it (with the projections), on <paramref name="dataSource"/>.</summary>
    public static DocumentStore CreateDocumentStore(NpgsqlDataSource dataSource, Action<StoreOptions>? more = null) => DocumentStore.For(o =>
    {
        MartenSetup.ConfigureEventStore(o, dataSource, Types);
        ProjectionsModule.ConfigureProjections(o);
        o.Projections.FastPollingTime = TimeSpan.FromMilliseconds(50);
        o.Projections.SlowPollingTime = TimeSpan.FromMilliseconds(200);
        more?.Invoke(o);
    });

    public static async Task<EventStoreDatabase> CreateAsync(EventStoreOptions? options = null)
    {
        var database = new PostgresDatabase();
        await database.InitializeAsync();
        var dataSource = NpgsqlDataSource.Create(database.ConnectionString);
        var db = new EventStoreDatabase(database, dataSource, options ?? FastOptions);
        await db.Documents.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        await using (var leases = dataSource.CreateCommand(LeasesDdl)) await leases.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
        return db;
    }

    /// <summary>A store on its own data source (its own connections), as another replica would have.</summary>
    public MartenEventStore OtherReplica(NpgsqlDataSource dataSource) => new(CreateDocumentStore(dataSource), dataSource, Types, FastOptions);

    public async Task<long> ScalarAsync(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Marten's async daemon over this database, running every async projection (the audit trail).</summary>
    public async Task<IProjectionDaemon> StartDaemonAsync(DocumentStore? documents = null)
    {
        var daemon = await (documents ?? Documents).BuildProjectionDaemonAsync();
        await daemon.StartAllAsync();
        return daemon;
    }

    public async ValueTask DisposeAsync()
    {
        Documents.Dispose();
        await DataSource.DisposeAsync();
        await _database.DisposeAsync();
    }
}

/// <summary>The tests' own event: a tag that says what it stands for, and a number.</summary>
public sealed record TestEvent(string Tag, int N);

/// <summary>Tiny builders so each test shows only what matters to it.</summary>
internal static class EventBuilders
{
    public static readonly DateTimeOffset Now = new(2026, 11, 21, 14, 2, 0, TimeSpan.FromHours(1));

    public static EventData Event(string tag, int n = 1, string principal = "alice") =>
        new(nameof(TestEvent), $$"""{"tag":"{{tag}}","n":{{n}}}""", new EventMetadata(principal, Now, "corr-1", CausationId: null));

    public static EventData[] Numbered(string tag, int from, int count) =>
        [.. Enumerable.Range(from, count).Select(i => Event(tag, i))];

    /// <summary>What a test event stands for.</summary>
    public static string Tag(RecordedEvent e) => ((TestEvent)e.Body!).Tag;

    public static int N(RecordedEvent e) => ((TestEvent)e.Body!).N;
}
