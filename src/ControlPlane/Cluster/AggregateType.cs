using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Cluster;

/// <summary>What a command did: the events it appended (none when it was already satisfied) and the position of the
/// stream's newest event, which a reader waits for to see the outcome.</summary>
public sealed record CommandResult<TEvent>(IReadOnlyList<TEvent> Events, LogPosition Position);

/// <summary>A command as it travels to the member that owns its aggregate, and the answer that comes back.</summary>
public sealed record ForwardedCommand(string Aggregate, string StreamId, JsonElement Command, string Principal, string CorrelationId, DateTimeOffset Time);

public sealed record ForwardedEvent(string Type, JsonElement Body);

public sealed record ForwardedResult(long Position, ForwardedEvent[] Events);

/// <summary>The face of an aggregate type that forwarded commands (JSON, type unknown until read) are handled through.</summary>
public interface IAggregateType
{
    string Name { get; }
    Task<ForwardedResult> HandleForwardedAsync(EntityHost host, ForwardedCommand forwarded, CancellationToken ct);
}

/// <summary>
/// An aggregate as the entity host runs it: its decider, and how its commands and state travel as JSON (commands to
/// the shard's owner, state into snapshots). Commands and states are closed record hierarchies marked with
/// [JsonPolymorphic], so the JSON names the case.
/// </summary>
public sealed class AggregateType<TCommand, TEvent, TState>(string name, Decider<TCommand, TEvent, TState> decider) : IAggregateType
    where TCommand : class where TEvent : class
{
    public string Name => name;
    public Decider<TCommand, TEvent, TState> Decider => decider;

    public JsonElement EncodeCommand(TCommand command) => JsonSerializer.SerializeToElement(command, Wire.Json);
    public TCommand DecodeCommand(JsonElement json) =>
        json.Deserialize<TCommand>(Wire.Json) ?? throw new JsonException($"an empty {name} command");

    public string EncodeState(TState state) => JsonSerializer.Serialize(state, Wire.Json);
    public TState? DecodeState(string json) => JsonSerializer.Deserialize<TState>(json, Wire.Json);

    public async Task<ForwardedResult> HandleForwardedAsync(EntityHost host, ForwardedCommand forwarded, CancellationToken ct)
    {
        var result = await host.AskAsync(this, forwarded.StreamId, DecodeCommand(forwarded.Command),
            new CommandContext(forwarded.Principal, forwarded.CorrelationId, forwarded.Time), ct);
        return new(result.Position.Value, result.Events
            .Select(e => new ForwardedEvent(e.GetType().Name, JsonSerializer.SerializeToElement(e, e.GetType(), EventCodec.Json))).ToArray());
    }

    public CommandResult<TEvent> FromForwarded(ForwardedResult result) => new(
        result.Events.Select(e => (TEvent)EventCodec.Decode(e.Type, e.Body.GetRawText())).ToList(), new LogPosition(result.Position));
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
