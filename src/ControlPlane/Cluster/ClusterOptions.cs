namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// How the replicas of one control plane form a cluster and share the aggregates. Every replica of a cluster must use
/// the same <see cref="Shards"/>; the other settings may differ per replica but rarely should.
/// </summary>
public sealed record ClusterOptions
{
    /// <summary>This replica's name among the members. Default: host name, process id and a random suffix (unique per start).</summary>
    public string MemberId { get; init; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>Akka remoting (members talk to each other here). Default 7082, next to the API's 7080 and gRPC's 7081.</summary>
    public int RemotingPort { get; init; } = 7082;

    /// <summary>Akka addresses to join (akka.tcp://mesh@host:port). Default: none; the replicas recorded in the database are joined.</summary>
    public IReadOnlyList<string> SeedNodes { get; init; } = [];

    /// <summary>Number of shards the aggregate keys hash to. Fixed for the life of a cluster: changing it re-homes every aggregate. Default 64.</summary>
    public int Shards { get; init; } = 64;

    /// <summary>
    /// How long a lease (of a shard, or the split brain resolver's) lasts without renewal. A dead owner's shards are
    /// served elsewhere only after it has passed; a paused owner stops serving once it passes. Default 5 s.
    /// </summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often leases are renewed and the member's row refreshed. Default 1 s (at most a fifth of <see cref="LeaseTtl"/>).</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A member row that has not heartbeated for this long is not joined by starting replicas. Default 10 s.</summary>
    public TimeSpan MemberLiveness { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The split brain resolver decides after membership and reachability have been stable this long. With the
    /// failure detector's 2 s of acceptable heartbeat pause it bounds how soon a dead member's shards move. Default 1.5 s.
    /// </summary>
    public TimeSpan StableAfter { get; init; } = TimeSpan.FromSeconds(1.5);

    /// <summary>
    /// How long after a downed member is removed its shards start on the survivors (Akka's down-removal-margin). Akka
    /// waits <see cref="StableAfter"/> again when unset; the shard leases already keep a downed member's shards from
    /// running twice, so half a second is enough. Default 0.5 s.
    /// </summary>
    public TimeSpan DownRemovalMargin { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>An entity with no command for this long is passivated (its state is in the log). Default 2 min.</summary>
    public TimeSpan PassivateAfter { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>A snapshot of an aggregate's state is stored every this many events of its stream. Default 100.</summary>
    public int SnapshotEvery { get; init; } = 100;

    /// <summary>How long a command waits for its shard to be served (a member died, the database is away) before the API answers 503. Default 30 s.</summary>
    public TimeSpan RouteTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long one attempt waits for the entity's answer before the gateway sends the command again: a command sent
    /// to a member that just died is lost, not refused. Retrying is safe (commands are idempotent, and an entity
    /// answers a repeated command id with its first answer). Default 1 s.
    /// </summary>
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(1);
}
