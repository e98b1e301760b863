using System.Globalization;
using System.Text.Json;
using JasperFx.Events;
using Marten;
using Mesh.Contracts.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// The event store on Marten: one Marten stream per aggregate (string keys), Marten's event sequence as the global
/// log position. Appends are in MartenEventStore.Append.cs, the catch-up subscription in MartenEventStore.Subscribe.cs;
/// this file holds the reads and the mapping of Marten's events and metadata to <see cref="RecordedEvent"/>.
/// </summary>
public sealed partial class MartenEventStore(
    IDocumentStore store, NpgsqlDataSource dataSource, EventTypes types, EventStoreOptions? options = null, ILogger<MartenEventStore>? logger = null)
    : IEventStore
{
    // Headers of every event: Marten has columns for correlation, causation and the user name, but not for the time
    // the command was decided (its own timestamp is the append's), so that travels as a header.
    internal const string TimeHeader = "time";

    private readonly EventStoreOptions _options = options ?? new EventStoreOptions();
    private readonly ILogger _logger = logger ?? NullLogger<MartenEventStore>.Instance;

    public IDocumentStore Documents => store;

    public async Task<IReadOnlyList<RecordedEvent>> ReadStreamAsync(string streamId, long afterVersion = 0, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        var events = await session.Events.FetchStreamAsync(streamId, fromVersion: afterVersion + 1, token: ct);
        return events.Select(ToRecorded).ToArray();
    }

    public async Task<IReadOnlyList<RecordedEvent>> ReadAllAsync(LogPosition after, int maxCount, CancellationToken ct = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxCount);
        // Reading "after the last position seen" is only safe because positions become visible in order (see the
        // append lock): no event can later appear below a position a reader has already passed. What can appear
        // there is a tombstone Marten writes for an append that failed after taking its numbers: never delivered.
        //
        // The log is read with one statement over Marten's event table, each body parsed from the row the reader
        // already holds with the JSON options Marten was given (MartenSetup): Marten's LINQ reader streams every column
        // of every row asynchronously, which made a catch-up three to four times slower than the database delivers rows.
        await EnsureEventTablesAsync(ct);
        await using var command = dataSource.CreateCommand(ReadAllSql);
        command.Parameters.Add(new() { Value = after.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bigint });
        command.Parameters.Add(new() { Value = maxCount, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Integer });
        await using var reader = await command.ExecuteReaderAsync(ct);
        var events = new List<RecordedEvent>(Math.Min(maxCount, 4096));
        while (await reader.ReadAsync(ct))
        {
            var typeName = reader.GetString(3);
            if (!types.TryGet(typeName, out var type))
                throw new InvalidOperationException($"The event at position {reader.GetInt64(0)} has the unknown type '{typeName}'.");
            var body = JsonSerializer.Deserialize(reader.GetString(4), type, EventTypes.Json)!;
            var metadata = new EventMetadata(
                reader.IsDBNull(7) ? "" : reader.GetString(7),
                DecisionTime(reader.IsDBNull(8) ? null : TimeHeaderIn(reader.GetString(8)), reader.GetFieldValue<DateTimeOffset>(9)),
                reader.IsDBNull(5) ? "" : reader.GetString(5),
                reader.IsDBNull(6) ? null : reader.GetString(6));
            events.Add(new RecordedEvent(new LogPosition(reader.GetInt64(0)), reader.GetString(1), reader.GetInt64(2), typeName, body, metadata));
        }
        return events;
    }

    /// <summary>
    /// Creates Marten's event tables if they are missing: the statements of this store that name them directly may
    /// run before Marten's own start-up migration, which every Marten query would otherwise have waited for.
    /// </summary>
    private async ValueTask EnsureEventTablesAsync(CancellationToken ct)
    {
        if (_eventTablesChecked) return;
        await store.Storage.Database.EnsureStorageExistsAsync(typeof(IEvent), ct);
        _eventTablesChecked = true;
    }

    private volatile bool _eventTablesChecked;

    private string ReadAllSql => field ??= $"""
        SELECT seq_id, stream_id, version, type, data, correlation_id, causation_id, user_name, headers, timestamp
        FROM {store.Options.Events.DatabaseSchemaName}.mt_events
        WHERE seq_id > $1 AND stream_id <> '{Tombstone.StreamKey}'
        ORDER BY seq_id LIMIT $2
        """;

    /// <summary>The time header of an event's headers (JSON text), or null when they carry none.</summary>
    private static string? TimeHeaderIn(string headers)
    {
        using var json = JsonDocument.Parse(headers);
        return json.RootElement.TryGetProperty(TimeHeader, out var time) && time.ValueKind == JsonValueKind.String ? time.GetString() : null;
    }

    public async Task<LogPosition> HeadAsync(CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        var last = await session.Events.QueryAllRawEvents()
            .Where(e => e.StreamKey != Tombstone.StreamKey)
            .OrderByDescending(e => e.Sequence)
            .Select(e => e.Sequence)
            .FirstOrDefaultAsync(ct);
        return new LogPosition(last);
    }

    /// <summary>The last position of an event recorded at or before <paramref name="time"/> (Marten's append timestamp); the start when none was.</summary>
    public async Task<LogPosition> PositionAtAsync(DateTimeOffset time, CancellationToken ct = default)
    {
        await using var session = store.QuerySession();
        var last = await session.Events.QueryAllRawEvents()
            .Where(e => e.Timestamp <= time && e.StreamKey != Tombstone.StreamKey)
            .OrderByDescending(e => e.Sequence)
            .Select(e => e.Sequence)
            .FirstOrDefaultAsync(ct);
        return new LogPosition(last);
    }

    internal static RecordedEvent ToRecorded(IEvent e) =>
        new(new LogPosition(e.Sequence), e.StreamKey!, e.Version, e.EventTypeName, e.Data, MetadataOf(e));

    internal static EventMetadata MetadataOf(IEvent e) =>
        new(e.UserName ?? "", DecisionTime(e.GetHeader(TimeHeader), e.Timestamp), e.CorrelationId ?? "", e.CausationId);

    /// <summary>
    /// When the command was decided: its time header, else when Marten appended the event. Headers come back as plain
    /// objects, and Marten's reader may already have turned a date-like string into a date.
    /// </summary>
    private static DateTimeOffset DecisionTime(object? header, DateTimeOffset appended) => header switch
    {
        JsonElement { ValueKind: JsonValueKind.String } s => DecisionTime(s.GetString(), appended),
        string s => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
        DateTimeOffset t => t,
        DateTime t => new DateTimeOffset(t),
        _ => appended,
    };
}
