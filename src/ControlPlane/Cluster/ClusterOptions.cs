namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// How the replicas of one control plane share the aggregates. Every replica of a cluster must use the same
/// <see cref="Shards"/>; the other settings may differ per replica but rarely should.
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>This replica's name among the members. Default: host name, process id and a random suffix (unique per start).</summary>
    public string MemberId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Number of shards the aggregate keys hash to. Fixed for the life of a cluster. Default 64.</summary>
    public int Shards { get; init; } = 64;

    /// <summary>
    /// How long a shard lease (and a member's heartbeat) lasts without renewal. A member that dies is replaced
    /// within this time; a paused member is fenced once it passes. Default 5 s.
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often a member heartbeats, renews its leases and rebalances. Default 1 s (keep it well under <see cref="LeaseTtl"/>).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>An entity with no command for this long is dropped from memory (its state is in the log). Default 2 min.</summary>
    public TimeSpan PassivateAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>A snapshot of an aggregate's state is stored every this many events of its stream. Default 100.</summary>
    public int SnapshotEvery { get; init; } = 100;

    /// <summary>How long a command waits for its shard to get an owner (member death, rebalancing) before it fails. Default 30 s.</summary>
    public TimeSpan RouteTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
