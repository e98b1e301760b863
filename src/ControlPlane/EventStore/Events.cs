using System.Text.Json;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.EventStore;

/// <summary>Who caused an event, when, and as part of which request: the audit trail carried by every event.</summary>
/// <param name="Time">When the command was decided (arrives in the command; not the database's clock).</param>
/// <param name="CorrelationId">Shared by every event that one user request produced, across aggregates.</param>
/// <param name="CausationId">The id of the command or event that directly caused this one, if any.</param>
public sealed record EventMetadata(string Principal, DateTimeOffset Time, string CorrelationId, string? CausationId);

/// <summary>
/// An event about to be appended. <paramref name="Type"/> names a registered event type (see <see cref="EventTypes"/>)
/// and <paramref name="Json"/> is its body; <see cref="Body"/>, when the caller already holds the event object,
/// spares the store from parsing the JSON again.
/// </summary>
public sealed record EventData(string Type, string Json, EventMetadata Metadata)
{
    public object? Body { get; init; }
}

/// <summary>
/// An event as stored. <see cref="StreamVersion"/> counts from 1 within its stream; <see cref="Position"/> is its
/// place in the one global log (Marten's event sequence: it starts at 1 and only grows, but may skip numbers that a
/// refused append had taken).
/// </summary>
public sealed record RecordedEvent
{
    private string? _json;

    public RecordedEvent(LogPosition position, string streamId, long streamVersion, string type, string json, EventMetadata metadata)
        : this(position, streamId, streamVersion, type, (object?)null, metadata) => _json = json;

    internal RecordedEvent(LogPosition position, string streamId, long streamVersion, string type, object? body, EventMetadata metadata)
    {
        (Position, StreamId, StreamVersion, Type, Body, Metadata) = (position, streamId, streamVersion, type, body, metadata);
    }

    public LogPosition Position { get; }
    public string StreamId { get; }
    public long StreamVersion { get; }
    public string Type { get; }
    public EventMetadata Metadata { get; }

    /// <summary>The event object as Marten read it; null for an event built from JSON alone.</summary>
    public object? Body { get; }

    /// <summary>The body as JSON (computed on first use for an event read from the store: most readers want <see cref="Body"/>).</summary>
    public string Json => _json ??= JsonSerializer.Serialize(Body, Body!.GetType(), EventTypes.Json);

    public bool Equals(RecordedEvent? other) =>
        other is not null && Position == other.Position && StreamId == other.StreamId && StreamVersion == other.StreamVersion
        && Type == other.Type && Metadata == other.Metadata && Json == other.Json;

    public override int GetHashCode() => HashCode.Combine(Position, StreamId, StreamVersion, Type);
}

/// <summary>Special values of the expected stream version passed to <see cref="IEventStore.AppendAsync"/>.</summary>
public static class ExpectedVersion
{
    /// <summary>Skip the check: append after whatever the stream holds.</summary>
    public const long Any = -1;

    /// <summary>The stream must not exist yet (a stream's version is its number of events).</summary>
    public const long NoStream = 0;
}
