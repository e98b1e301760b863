using System.Text.Json;
using Mesh.ControlPlane.EventStore;

namespace Mesh.ControlPlane.Commands;

/// <summary>
/// Maps domain events to stored events and back. The stored type is the record's name (a fact in the domain's
/// language, e.g. "PolicyApplied"); every event type is registered once, by its module, so an unknown type in the log
/// is a loud error rather than a silently skipped fact.
/// </summary>
public static class EventCodec
{
    public static readonly JsonSerializerOptions Json = EventTypes.Json;

    /// <summary>Every domain event type (each module declares its own, see <see cref="Modules"/>).</summary>
    public static IReadOnlyList<Type> Types => Modules.EventTypes;

    private static readonly Dictionary<string, Type> TypesByName = Types.ToDictionary(t => t.Name);

    public static EventData Encode(object domainEvent, EventMetadata metadata) =>
        new(domainEvent.GetType().Name, JsonSerializer.Serialize(domainEvent, domainEvent.GetType(), Json), metadata) { Body = domainEvent };

    /// <summary>The event Marten read when there is one (no JSON round trip), else the one its JSON holds.</summary>
    public static object Decode(RecordedEvent recorded) =>
        recorded.Body is { } body && TypesByName.TryGetValue(recorded.Type, out var t) && body.GetType() == t
            ? body
            : Decode(recorded.Type, recorded.Json, $"event {recorded.Position}");

    /// <param name="what">Names the event in errors (its position, or where it came from).</param>
    public static object Decode(string type, string json, string what = "an event") =>
        TypesByName.TryGetValue(type, out var t)
            ? JsonSerializer.Deserialize(json, t, Json) ?? throw new InvalidDataException($"{what} ({type}) has an empty body")
            : throw new InvalidDataException($"{what} has unknown type '{type}'");
}
