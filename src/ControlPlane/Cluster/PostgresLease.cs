using System.Diagnostics;
using Akka.Actor;
using Akka.Coordination;
using Akka.DependencyInjection;
using Mesh.ControlPlane.EventStore;
using Npgsql;

namespace Mesh.ControlPlane.Cluster;

/// <summary>
/// An Akka.Coordination lease stored in PostgreSQL (<c>mesh_leases</c>): what each shard (sharding's use-lease) and
/// the split brain resolver (lease-majority) hold. Every statement decides on the database's clock
/// (<c>clock_timestamp()</c>), so members never compare their clocks. The TTL is the lease's heartbeat-timeout; it is
/// renewed every heartbeat-interval.
/// <para>
/// Validity is also tracked here, on this process's monotonic clock, from the moment the statement that took or
/// renewed the lease was sent (the database's expiry is later than that). A member paused past that point, or cut off
/// from the database, calls the lease-lost callback (its shard stops) before anyone else can have taken the lease;
/// its appends are fenced in the database anyway (<see cref="LeaseFence"/>).
/// </para>
/// <code>
///  Free ──acquire──► Held ──renewed──► Held
///                     │ not renewed within the TTL (paused, database away), or renewal finds another owner
///                     ▼
///                    Lost: lease-lost callback, no more renewals ──acquire again──► Held
/// </code>
/// </summary>
public sealed partial class PostgresLease : Lease
{
    private readonly NpgsqlDataSource _db;
    private readonly ILogger _log;
    private readonly TimeSpan _ttl, _interval, _operationTimeout;
    private readonly Lock _gate = new();
    private long _validUntil;                    // Stopwatch ticks; 0 when not held
    private CancellationTokenSource? _heartbeat;

    /// <summary>The constructor <see cref="LeaseProvider"/> calls: the owner is this member's incarnation.</summary>
    public PostgresLease(LeaseSettings settings, ExtendedActorSystem system)
        : this(settings, DependencyResolver.For(system).Resolver.GetService<NpgsqlDataSource>(), OwnerOf(system),
            DependencyResolver.For(system).Resolver.GetService<ILoggerFactory>().CreateLogger<PostgresLease>())
    {
    }

    public PostgresLease(LeaseSettings settings, NpgsqlDataSource db, string owner, ILogger log) : base(settings)
    {
        (_db, Owner, _log) = (db, owner, log);
        _ttl = settings.TimeoutSettings.HeartbeatTimeout;
        _interval = settings.TimeoutSettings.HeartbeatInterval;
        _operationTimeout = settings.TimeoutSettings.OperationTimeout;
    }

    /// <summary>The owner this lease is held as: the member's address and Akka UID, so a restarted member on the same
    /// host and port is another owner than the incarnation that held the lease before.</summary>
    public string Owner { get; }

    public string Name => Settings.LeaseName;

    public static string OwnerOf(ActorSystem system)
    {
        var self = Akka.Cluster.Cluster.Get(system).SelfUniqueAddress;
        return $"{self.Address}#{self.Uid}";
    }

    /// <summary>The lease Akka's sharding acquires for a shard of an entity type (its naming, in Shard.cs).</summary>
    public static string ShardLeaseName(ActorSystem system, string typeName, string shardId) => $"{system.Name}-shard-{typeName}-{shardId}";

    public const string CreateTableSql =
        $"CREATE TABLE IF NOT EXISTS {LeaseFence.Table} (name text PRIMARY KEY, owner text, expires_at timestamptz NOT NULL DEFAULT '-infinity', acquired_at timestamptz)";

    public override Task<bool> Acquire() => Acquire(_ => { });

    public override async Task<bool> Acquire(Action<Exception> leaseLostCallback)
    {
        await EnsureTableAsync(_db);
        var sent = Stopwatch.GetTimestamp();
        using var timeout = new CancellationTokenSource(_operationTimeout);
        await using var cmd = _db.CreateCommand($"""
            INSERT INTO {LeaseFence.Table} AS l (name, owner, expires_at, acquired_at)
            VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3), clock_timestamp())
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                acquired_at = CASE WHEN l.owner = excluded.owner AND l.expires_at > clock_timestamp() THEN l.acquired_at ELSE excluded.acquired_at END
            WHERE l.owner = excluded.owner OR l.owner IS NULL OR l.expires_at <= clock_timestamp()
            RETURNING 1
            """);
        cmd.Parameters.Add(new() { Value = Name });
        cmd.Parameters.Add(new() { Value = Owner });
        cmd.Parameters.Add(new() { Value = _ttl.TotalSeconds });
        if (await cmd.ExecuteScalarAsync(timeout.Token) is null) return false;

        CancellationTokenSource heartbeat;
        lock (_gate)
        {
            _heartbeat?.Cancel();
            _heartbeat = heartbeat = new CancellationTokenSource();
            _validUntil = sent + TtlTicks;
        }
        _ = HeartbeatAsync(heartbeat, leaseLostCallback);
        return true;
    }

    public override async Task<bool> Release()
    {
        lock (_gate)
        {
            _heartbeat?.Cancel();
            _heartbeat = null;
            _validUntil = 0;
        }
        using var timeout = new CancellationTokenSource(_operationTimeout);
        await using var cmd = _db.CreateCommand(
            $"UPDATE {LeaseFence.Table} SET owner = NULL, expires_at = '-infinity' WHERE name = $1 AND owner = $2");
        cmd.Parameters.Add(new() { Value = Name });
        cmd.Parameters.Add(new() { Value = Owner });
        await cmd.ExecuteNonQueryAsync(timeout.Token);
        return true;
    }

    public override bool CheckLease()
    {
        lock (_gate) return _validUntil != 0 && Stopwatch.GetTimestamp() < _validUntil;
    }

    private long TtlTicks => (long)(_ttl.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Renews until released or lost. Each wait ends at the next renewal or at the local expiry, whichever is
    /// first, so a process resumed after a pause notices the lapse before it renews.</summary>
    private async Task HeartbeatAsync(CancellationTokenSource mine, Action<Exception> lost)
    {
        var ct = mine.Token;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                long validUntil;
                lock (_gate) validUntil = _validUntil;
                var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), validUntil);
                if (left > TimeSpan.Zero) await Task.Delay(left < _interval ? left : _interval, ct);
                if (Stopwatch.GetTimestamp() >= validUntil)
                {
                    Lose(mine, lost, new LeaseTimeoutException($"lease {Name} was not renewed within its TTL of {_ttl.TotalSeconds:0.#} s"));
                    return;
                }
                var sent = Stopwatch.GetTimestamp();
                bool renewed;
                // A renewal that hangs (the database away, a lock) may run only until the lease would lapse anyway.
                try { renewed = await RenewAsync(Stopwatch.GetElapsedTime(sent, validUntil), ct); }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    LogRenewFailed(Name, e.Message);   // try again until the local expiry
                    continue;
                }
                if (!renewed)
                {
                    Lose(mine, lost, new LeaseException($"lease {Name} is no longer held by {Owner}"));
                    return;
                }
                lock (_gate) if (_heartbeat == mine) _validUntil = sent + TtlTicks;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private async Task<bool> RenewAsync(TimeSpan left, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromTicks(Math.Clamp(left.Ticks, TimeSpan.FromMilliseconds(1).Ticks, _operationTimeout.Ticks)));
        await using var cmd = _db.CreateCommand($"""
            UPDATE {LeaseFence.Table} SET expires_at = clock_timestamp() + make_interval(secs => $3)
            WHERE name = $1 AND owner = $2 AND expires_at > clock_timestamp()
            RETURNING 1
            """);
        cmd.Parameters.Add(new() { Value = Name });
        cmd.Parameters.Add(new() { Value = Owner });
        cmd.Parameters.Add(new() { Value = _ttl.TotalSeconds });
        return await cmd.ExecuteScalarAsync(timeout.Token) is not null;
    }

    private void Lose(CancellationTokenSource mine, Action<Exception> lost, Exception reason)
    {
        lock (_gate)
        {
            if (_heartbeat != mine) return;   // released or acquired again meanwhile
            _heartbeat = null;
            _validUntil = 0;
        }
        LogLost(Name, reason.Message);
        lost(reason);
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Task> TablesReady = new();

    /// <summary>Creates the lease table once per database and process. Under a transaction-scoped advisory lock: two
    /// replicas starting at once would otherwise race inside CREATE TABLE IF NOT EXISTS (a unique violation on the catalog).</summary>
    public static async Task EnsureTableAsync(NpgsqlDataSource db)
    {
        var ready = TablesReady.GetOrAdd(db.ConnectionString, _ => CreateTableAsync(db));
        try { await ready; }
        catch
        {
            TablesReady.TryRemove(new(db.ConnectionString, ready));   // the database was away: the next acquire tries again
            throw;
        }
    }

    private static async Task CreateTableAsync(NpgsqlDataSource db)
    {
        await using var conn = await db.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({ClusterLocks.CreateLeases})", conn, tx))
            await lockCmd.ExecuteNonQueryAsync();
        await using (var create = new NpgsqlCommand(CreateTableSql, conn, tx))
            await create.ExecuteNonQueryAsync();
        await tx.CommitAsync();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "renewing lease {Lease} failed ({Reason}); retrying until it lapses")]
    private partial void LogRenewFailed(string lease, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "lost lease {Lease}: {Reason}")]
    private partial void LogLost(string lease, string reason);
}
