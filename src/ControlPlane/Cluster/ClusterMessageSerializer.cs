using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using Akka.Serialization;
using Mesh.ControlPlane.Commands;

namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// The wire form of <see cref="IClusterMessage"/> between members: System.Text.Json, with each command encoded by its
/// aggregate (a closed [JsonPolymorphic] family) and each event by <see cref="EventCodec"/>, the same names the log
/// stores. Bound to the interface in configuration, so none of our messages falls back to Akka's default serializer.
/// </summary>
public sealed class ClusterMessageSerializer(ExtendedActorSystem system, AggregateRegistry aggregates) : SerializerWithStringManifest(system)
{
    // Akka's own serializers use ids below 100; this one is ours for as long as members of mixed versions may talk.
    public const int Id = 0x6D65;
    private const string Command = "cmd", Succeeded = "ok", Refused = "no";

    public override int Identifier => Id;

    public override string Manifest(object o) => o switch
    {
        CommandEnvelope => Command,
        CommandOutcome.Succeeded => Succeeded,
        CommandOutcome.Refused => Refused,
        _ => throw new ArgumentException($"{o.GetType()} has no wire form", nameof(o)),
    };

    public override byte[] ToBinary(object obj) => JsonSerializer.SerializeToUtf8Bytes(obj switch
    {
        CommandEnvelope e => new JsonObject
        {
            ["aggregate"] = e.Aggregate,
            ["streamId"] = e.StreamId,
            ["commandId"] = e.CommandId,
            ["command"] = JsonSerializer.SerializeToNode(aggregates[e.Aggregate].EncodeCommand(e.Command)),
            ["principal"] = e.Context.Principal,
            ["correlationId"] = e.Context.CorrelationId,
            ["time"] = e.Context.Time,
        },
        CommandOutcome.Succeeded s => new JsonObject
        {
            ["position"] = s.Position,
            ["events"] = new JsonArray(s.Events.Select(ev => (JsonNode)new JsonObject
            {
                ["type"] = ev.GetType().Name,
                ["body"] = JsonSerializer.SerializeToNode(ev, ev.GetType(), EventCodec.Json),
            }).ToArray()),
        },
        CommandOutcome.Refused r => new JsonObject { ["kind"] = r.Kind.ToString(), ["message"] = r.Message },
        _ => throw new ArgumentException($"{obj.GetType()} has no wire form", nameof(obj)),
    });

    public override object FromBinary(byte[] bytes, string manifest)
    {
        var json = JsonNode.Parse(bytes)?.AsObject() ?? throw new SerializationException($"an empty {manifest} message");
        string Text(string name) => (string?)json[name] ?? throw new SerializationException($"{manifest}: '{name}' is missing");
        return manifest switch
        {
            Command => new CommandEnvelope(Text("aggregate"), Text("streamId"), Text("commandId"),
                aggregates[Text("aggregate")].DecodeCommand(JsonSerializer.SerializeToElement(json["command"])),
                new CommandContext(Text("principal"), Text("correlationId"), json["time"]!.GetValue<DateTimeOffset>())),
            Succeeded => new CommandOutcome.Succeeded(json["position"]!.GetValue<long>(), json["events"]!.AsArray()
                .Select(e => EventCodec.Decode((string)e!["type"]!, e["body"]!.ToJsonString(), "an event in a reply")).ToList()),
            Refused => new CommandOutcome.Refused(Enum.Parse<Refusal>(Text("kind")), Text("message")),
            _ => throw new SerializationException($"unknown manifest '{manifest}' for {nameof(ClusterMessageSerializer)}"),
        };
    }

    private sealed class SerializationException(string message) : Exception(message);
}

/// <summary>The aggregates this control plane runs, by the name their envelopes carry.</summary>
public sealed class AggregateRegistry
{
    private readonly Dictionary<string, IAggregateType> _byName;

    public AggregateRegistry(IEnumerable<IAggregateType> aggregates)
    {
        _byName = new(StringComparer.Ordinal);
        foreach (var a in aggregates)
            if (!_byName.TryAdd(a.Name, a)) throw new InvalidOperationException($"two aggregates are named '{a.Name}'");
    }

    public IAggregateType this[string name] =>
        _byName.TryGetValue(name, out var type) ? type : throw new KeyNotFoundException($"no aggregate is registered as '{name}'");
}
