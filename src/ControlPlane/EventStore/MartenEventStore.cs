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
        await using var session = store.QuerySession();
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => e.Sequence > after.Value && e.StreamKey != Tombstone.StreamKey)
            .OrderBy(e => e.Sequence)
            .Take(maxCount)
            .ToListAsync(ct);
        return events.Select(ToRecorded).ToArray();
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

    private static DateTimeOffset Parse(string time) => DateTimeOffset.Parse(time, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    internal static EventMetadata MetadataOf(IEvent e)
    {
        // Headers come back as plain objects, and Marten's reader may already have turned a date-like string into a date.
        var time = e.GetHeader(TimeHeader) switch
        {
            JsonElement { ValueKind: JsonValueKind.String } s => Parse(s.GetString()!),
            string s => Parse(s),
            DateTimeOffset t => t,
            DateTime t => new DateTimeOffset(t),
            _ => e.Timestamp,
        };
        return new EventMetadata(e.UserName ?? "", time, e.CorrelationId ?? "", e.CausationId);
    }
}
