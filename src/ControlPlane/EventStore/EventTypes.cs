using System.Text.Json;

namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// The event types the store knows, by their stored names. A name is the record's own name ("PolicyApplied") and is
/// fixed forever once events carry it; Marten maps each name to its type, so an event of an unknown name is refused
/// at append and a loud error at read, never a silently skipped fact.
/// </summary>
public sealed class EventTypes
{
    /// <summary>The JSON shape of event bodies, for the API and for Marten alike (camelCase, enums as numbers).</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly Dictionary<string, Type> _byName;

    public EventTypes(IEnumerable<Type> types) => _byName = types.ToDictionary(t => t.Name, StringComparer.Ordinal);

    public IReadOnlyCollection<Type> All => _byName.Values;

    public bool TryGet(string name, out Type type) => _byName.TryGetValue(name, out type!);

    /// <summary>The body of <paramref name="data"/> as an object of its registered type.</summary>
    /// <exception cref="ArgumentException">The type is not registered, or the body is no JSON of it.</exception>
    public object BodyOf(EventData data)
    {
        if (!_byName.TryGetValue(data.Type, out var type))
            throw new ArgumentException($"'{data.Type}' is not a registered event type.", nameof(data));
        if (data.Body is { } body)
        {
            if (body.GetType() != type) throw new ArgumentException($"The body of a '{data.Type}' event is a {body.GetType().Name}.", nameof(data));
            return body;
        }
        try
        {
            return JsonSerializer.Deserialize(data.Json, type, Json) ?? throw new ArgumentException($"The '{data.Type}' event has an empty body.", nameof(data));
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"The body of a '{data.Type}' event is not valid: {e.Message}", nameof(data), e);
        }
    }
}
