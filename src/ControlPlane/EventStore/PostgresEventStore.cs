using Mesh.Contracts.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// The event store on one PostgreSQL table (<c>mesh_events</c>). Appends are in PostgresEventStore.Append.cs, the
/// catch-up subscription in PostgresEventStore.Subscribe.cs; this file holds the reads. The schema must have been
/// migrated (<see cref="EventStoreSchema.MigrateAsync"/>).
/// </summary>
public sealed partial class PostgresEventStore(
    NpgsqlDataSource dataSource, EventStoreOptions? options = null, ILogger<PostgresEventStore>? logger = null) : IEventStore
{
    private readonly EventStoreOptions _options = options ?? new EventStoreOptions();
    private readonly ILogger _logger = logger ?? NullLogger<PostgresEventStore>.Instance;

    private const string Columns = "position, stream_id, stream_version, type, data, metadata";

    public async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand(
            $"SELECT {Columns} FROM {EventStoreSchema.EventsTable} WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version");
        cmd.Parameters.Add(new() { Value = streamId });
        cmd.Parameters.Add(new() { Value = afterVersion });
        return await ReadEventsAsync(cmd, ct);
    }

    public async Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(LogPosition after, int maxCount, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        // Reading "after the last position seen" is only safe because positions become visible in order
        // (see the append lock): no event can later appear below a position a reader has already passed.
        await using var cmd = dataSource.CreateCommand(
            $"SELECT {Columns} FROM {EventStoreSchema.EventsTable} WHERE position > $1 ORDER BY position LIMIT $2");
        cmd.Parameters.Add(new() { Value = after.Value });
        cmd.Parameters.Add(new() { Value = maxCount });
        return await ReadEventsAsync(cmd, ct);
    }

    public async Task<LogPosition> HeadAsync(CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT coalesce(max(position), 0) FROM {EventStoreSchema.EventsTable}");
        return new LogPosition((long)(await cmd.ExecuteScalarAsync(ct))!);
    }

    private static async Task<IReadOnlyList<RecordedEvent>> ReadEventsAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var events = new List<RecordedEvent>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            events.Add(new RecordedEvent(
                new LogPosition(reader.GetInt64(0)),
                reader.GetString(1),
                reader.GetInt64(2),
                reader.GetString(3),
                reader.GetString(4),
                EventMetadataJson.Deserialize(reader.GetString(5))));
        }
        return events;
    }
}
