using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics;
using Mesh.ControlPlane.EventStore;
using Npgsql;

namespace Mesh.ControlPlane.Cluster;

/// <summary>What a member knows of the cluster after its last heartbeat: who is alive and who owns each shard.</summary>
public sealed record ClusterTopology(ImmutableDictionary<string, MemberInfo> Members, ImmutableArray<ShardLease> Leases)
{
    public static readonly ClusterTopology Empty = new(ImmutableDictionary<string, MemberInfo>.Empty, []);
}

/// <summary>
/// This replica as a member of the cluster. Every heartbeat it records that it is alive, renews the shard leases it
/// holds, hands over the shards that now belong to another member (rendezvous hashing over the live members), and
/// takes the free or expired shards that belong to it. A lease counts as held locally only until the TTL measured
/// from the start of the heartbeat that renewed it, on this process's monotonic clock: a member paused past that
/// point stops serving before anyone can have taken over, and its appends are fenced in the database anyway.
/// </summary>
public sealed partial class ClusterMember : BackgroundService
{
    private sealed record HeldLease(int Shard, long Epoch, long ValidUntil);

    private readonly LeaseTable _table;
    private readonly ClusterOptions _options;
    private readonly ILogger<ClusterMember> _log;
    private readonly ConcurrentDictionary<int, HeldLease> _held = new();
    private volatile ClusterTopology _topology = ClusterTopology.Empty;

    public ClusterMember(NpgsqlDataSource db, ClusterOptions options, ControlPlaneOptions cp, ILogger<ClusterMember> log)
    {
        _table = new LeaseTable(db, options);
        _options = options;
        _log = log;
        Me = new MemberInfo(options.MemberId, $"http://{cp.AdvertiseAddress}:{cp.ApiPort}", $"http://{cp.AdvertiseAddress}:{cp.GrpcPort}");
    }

    public MemberInfo Me { get; }

    public ClusterTopology Topology => _topology;

    /// <summary>Raised (synchronously, before the lease is given up in the database) with the shards this member stops owning.</summary>
    public Func<IReadOnlyCollection<int>, Task>? ShardsLost { get; set; }

    /// <summary>The fence of a shard this member holds now, or null.</summary>
    public LeaseFence? FenceOf(int shard) =>
        _held.TryGetValue(shard, out var lease) && Stopwatch.GetTimestamp() < lease.ValidUntil ? new LeaseFence(LeaseTable.LeaseOf(shard), Me.Id) : null;

    /// <summary>The member that owns the shard as of the last heartbeat (this one when it holds the lease), or null.</summary>
    public MemberInfo? OwnerOf(int shard)
    {
        if (FenceOf(shard) is not null) return Me;
        var topology = _topology;
        return shard < topology.Leases.Length && topology.Leases[shard] is { Live: true, Owner: { } owner }
            && topology.Members.TryGetValue(owner, out var member) && owner != Me.Id ? member : null;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var shardsReady = false;
        using var timer = new PeriodicTimer(_options.HeartbeatInterval);
        do
        {
            try
            {
                if (!shardsReady) { await _table.EnsureShardsAsync(stoppingToken); shardsReady = true; }
                await HeartbeatAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { break; }
            catch (Exception e)
            {
                // The database is away: leases lapse locally on their own (FenceOf), nothing to undo here.
                LogHeartbeatFailed(e);
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => !t.IsCanceled && t.Result, CancellationToken.None));
    }

    private async Task HeartbeatAsync(CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var validUntil = start + (long)(_options.LeaseTtl.TotalSeconds * Stopwatch.Frequency);
        await _table.HeartbeatAsync(Me, ct);

        // Renew first: what is not renewed was lost (taken after we were paused, or the database was away too long).
        var held = _held.Values.ToArray();
        var renewed = await _table.RenewAsync(Me.Id, held.Select(h => (h.Shard, h.Epoch)).ToArray(), ct);
        var lost = held.Where(h => !renewed.Contains(h.Shard)).Select(h => h.Shard).ToArray();
        if (lost.Length > 0) { LogLost(string.Join(",", lost)); await DropAsync(lost); }
        foreach (var h in held.Where(h => renewed.Contains(h.Shard))) _held[h.Shard] = h with { ValidUntil = validUntil };

        var members = await _table.AliveMembersAsync(ct);
        var ids = members.Select(m => m.Id).ToArray();
        var leases = await _table.LeasesAsync(ct);

        // Hand over what now belongs to someone else: stop serving it here, then free the lease so they take it at once.
        var handOver = _held.Keys.Where(s => ShardMap.DesiredOwner(s, ids) != Me.Id).ToArray();
        if (handOver.Length > 0)
        {
            await DropAsync(handOver);
            await _table.ReleaseAsync(Me.Id, handOver, ct);
            LogHandedOver(string.Join(",", handOver));
        }

        var wanted = leases.Where(l => !l.Live && !_held.ContainsKey(l.Shard) && ShardMap.DesiredOwner(l.Shard, ids) == Me.Id)
            .Select(l => l.Shard).ToArray();
        var acquired = await _table.AcquireAsync(Me.Id, wanted, ct);
        foreach (var (shard, epoch) in acquired) _held[shard] = new HeldLease(shard, epoch, validUntil);
        if (acquired.Count > 0) LogAcquired(string.Join(",", acquired.Select(a => $"{a.Shard}@{a.Epoch}")));

        var byShard = leases.ToDictionary(l => l.Shard);
        foreach (var (shard, epoch) in acquired) byShard[shard] = new ShardLease(shard, Me.Id, epoch, true);
        foreach (var s in handOver) byShard[s] = byShard[s] with { Owner = null, Live = false };
        _topology = new ClusterTopology(members.ToImmutableDictionary(m => m.Id), [.. byShard.Values.OrderBy(l => l.Shard)]);
    }

    private async Task DropAsync(IReadOnlyCollection<int> shards)
    {
        foreach (var s in shards) _held.TryRemove(s, out _);
        if (ShardsLost is { } handler) await handler(shards);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        // Leaving cleanly: free every lease now, so the others take over at their next heartbeat rather than after the TTL.
        var shards = _held.Keys.ToArray();
        try
        {
            await DropAsync(shards);
            await _table.ReleaseAsync(Me.Id, shards, cancellationToken);
            await _table.LeaveAsync(Me.Id, cancellationToken);
        }
        catch (Exception e) { LogHeartbeatFailed(e); }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "cluster heartbeat failed; held leases lapse on their own if this lasts")]
    private partial void LogHeartbeatFailed(Exception e);

    [LoggerMessage(Level = LogLevel.Warning, Message = "lost shards {Shards}: another member holds them now")]
    private partial void LogLost(string shards);

    [LoggerMessage(Level = LogLevel.Information, Message = "handed over shards {Shards}")]
    private partial void LogHandedOver(string shards);

    [LoggerMessage(Level = LogLevel.Information, Message = "acquired shards {Shards} (shard@epoch)")]
    private partial void LogAcquired(string shards);
}
