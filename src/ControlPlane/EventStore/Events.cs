using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.EventStore;

/// <summary>Who caused an event, when, and as part of which request: the audit trail carried by every event.</summary>
/// <param name="Time">When the command was decided (arrives in the command; not the database's clock).</param>
/// <param name="CorrelationId">Shared by every event that one user request produced, across aggregates.</param>
/// <param name="CausationId">The id of the command or event that directly caused this one, if any.</param>
public sealed record EventMetadata(string Principal, DateTimeOffset Time, string CorrelationId, string? CausationId);

/// <summary>An event about to be appended. <paramref name="Json"/> is the event body and must be valid JSON.</summary>
public sealed record EventData(string Type, string Json, EventMetadata Metadata);

/// <summary>
/// An event as stored. <see cref="StreamVersion"/> counts from 1 within its stream; <see cref="Position"/> is its
/// place in the one global log (dense: 1, 2, 3, … with no holes). <see cref="Json"/> comes back in PostgreSQL's
/// normalized jsonb form (key order and whitespace may differ from what was appended; the value is the same).
/// </summary>
public sealed record RecordedEvent(
    LogPosition Position, string StreamId, long StreamVersion, string Type, string Json, EventMetadata Metadata);

/// <summary>Special values of the expected stream version passed to <see cref="IEventStore.AppendAsync"/>.</summary>
public static class ExpectedVersion
{
    /// <summary>Skip the check: append after whatever the stream holds.</summary>
    public const long Any = -1;

    /// <summary>The stream must not exist yet (a stream's version is its number of events).</summary>
    public const long NoStream = 0;
}
