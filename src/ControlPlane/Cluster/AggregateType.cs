using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.Contracts.Identity;

namespace Mesh.ControlPlane.Cluster;

/// <summary>What a command did: the events it appended (none when it was already satisfied) and the position of the
/// stream's newest event, which a reader waits for to see the outcome.</summary>
public sealed record CommandResult<TEvent>(IReadOnlyList<TEvent> Events, LogPosition Position);

/// <summary>
/// An aggregate as an entity runs it, with its types erased: the entity and the wire know aggregates only through
/// this face, so the core never names a particular one.
/// </summary>
public interface IAggregateType
{
    /// <summary>The name command envelopes carry; unique among the registered aggregates.</summary>
    string Name { get; }
    object Initial { get; }
    IReadOnlyList<object> Decide(object command, object state);
    object Evolve(object state, object @event);
    JsonElement EncodeCommand(object command);
    object DecodeCommand(JsonElement json);
    string EncodeState(object state);
    /// <summary>Null when the JSON is an older shape of the state: the entity replays the stream instead.</summary>
    object? TryDecodeState(string json);
}

/// <summary>
/// An aggregate: its decider, and how its commands and state travel as JSON (commands to the shard's owner, state
/// into snapshots). Commands and states are closed record hierarchies marked with [JsonPolymorphic], so the JSON
/// names the case. Each aggregate module declares one and registers it (<see cref="ClusterModule.AddAggregate"/>).
/// </summary>
public sealed class AggregateType<TCommand, TEvent, TState>(string name, Decider<TCommand, TEvent, TState> decider) : IAggregateType
    where TCommand : class where TEvent : class where TState : notnull
{
    public string Name => name;
    public Decider<TCommand, TEvent, TState> Decider => decider;
    public object Initial => decider.Initial;

    public IReadOnlyList<object> Decide(object command, object state) => decider.Decide((TCommand)command, (TState)state);
    public object Evolve(object state, object @event) => decider.Evolve((TState)state, (TEvent)@event);

    public JsonElement EncodeCommand(object command) => JsonSerializer.SerializeToElement((TCommand)command, Wire.Json);
    public object DecodeCommand(JsonElement json) =>
        json.Deserialize<TCommand>(Wire.Json) ?? throw new JsonException($"an empty {name} command");

    public string EncodeState(object state) => JsonSerializer.Serialize((TState)state, Wire.Json);
    public object? TryDecodeState(string json)
    {
        try { return JsonSerializer.Deserialize<TState>(json, Wire.Json); }
        catch (JsonException) { return null; }
    }

    internal CommandResult<TEvent> ResultOf(CommandOutcome.Succeeded outcome) =>
        new(outcome.Events.Cast<TEvent>().ToList(), new LogPosition(outcome.Position));
}

/// <summary>JSON of commands and states on the wire: the domain's own value types keep their canonical forms.</summary>
internal static class Wire
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new NetworkPolicyConverter(), new LabelSetConverter() },
    };

    private sealed class NetworkPolicyConverter : JsonConverter<NetworkPolicy>
    {
        public override NetworkPolicy Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            using var doc = JsonDocument.ParseValue(ref reader);
            return PolicyJson.Deserialize(doc.RootElement.GetRawText());
        }

        public override void Write(Utf8JsonWriter writer, NetworkPolicy value, JsonSerializerOptions options) =>
            writer.WriteRawValue(PolicyJson.Serialize(value));
    }

    private sealed class LabelSetConverter : JsonConverter<LabelSet>
    {
        public override LabelSet Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            LabelSet.Parse(JsonSerializer.Deserialize<string[]>(ref reader, options) ?? []);

        public override void Write(Utf8JsonWriter writer, LabelSet value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value.Select(l => l.ToString()).ToArray(), options);
    }
}
