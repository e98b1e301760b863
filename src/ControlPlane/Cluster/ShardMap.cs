using System.Text;
using Akka.Cluster.Sharding;

namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// Which shard an aggregate lives on: a pure function of its stream id, the same in every process and every release
/// (string.GetHashCode is randomized per process: never here). Tests use it to find the owner of a stream.
/// </summary>
public static class ShardMap
{
    public static int ShardOf(string streamId, int shards) => (int)(Fnv1a(streamId) % (ulong)shards);

    private static ulong Fnv1a(string s)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(s)) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }
}

/// <summary>Routes command envelopes through the shard region: the entity is the stream, the shard is <see cref="ShardMap.ShardOf"/>.</summary>
public sealed class AggregateMessageExtractor(int shards) : IMessageExtractor
{
    private readonly string[] _shardIds = Enumerable.Range(0, shards).Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    public string? EntityId(object message) => (message as CommandEnvelope)?.StreamId;

    public object? EntityMessage(object message) => message;

    public string ShardId(object message) => message is CommandEnvelope e ? ShardId(e.StreamId) : throw new ArgumentException($"{message.GetType()} is not routed by stream", nameof(message));

    public string ShardId(string entityId, object? messageHint = null) => _shardIds[ShardMap.ShardOf(entityId, _shardIds.Length)];
}
