using Akka.Actor;
using Npgsql;

namespace Mesh.ControlPlane.Cluster;

/// <summary>Advisory lock keys of the cluster; "mesh" in the high half keeps them apart from anyone else's.</summary>
internal static class ClusterLocks
{
    private const long Prefix = 0x6D657368L << 32;

    /// <summary>Creating the lease table, by replicas starting at once.</summary>
    public const long CreateLeases = Prefix | 0x0101;

    /// <summary>Deciding whom to join: held from reading the live members until this one is recorded among them.</summary>
    public const long Join = Prefix | 0x0102;
}

/// <summary>A replica as the others find it: its Akka address, its id among the members, and where its listeners are.</summary>
public sealed record MemberRow(string Address, string Id, string ApiUrl, string GrpcUrl);

/// <summary>
/// How replicas that share a database find each other with no flags: each records its Akka address in
/// <c>mesh_cluster_members</c> and heartbeats there. A starting replica, under an advisory lock (so two first
/// replicas cannot both find nobody and form two clusters), reads the members that heartbeated recently, records
/// itself, and then joins them, or itself when there are none. The rows also carry each member's API and gRPC URLs,
/// which <c>GET /v1/cluster</c> shows next to Akka's membership.
/// </summary>
public sealed partial class PostgresMembership(NpgsqlDataSource db, ClusterOptions options, ControlPlaneOptions cp, ILogger<PostgresMembership> log)
{
    private const string Table = "mesh_cluster_members";
    private volatile IReadOnlyDictionary<string, MemberRow> _rows = new Dictionary<string, MemberRow>();

    /// <summary>The members' rows as of the last heartbeat, by Akka address.</summary>
    public IReadOnlyDictionary<string, MemberRow> Rows => _rows;

    public MemberRow Me(ActorSystem system) => new(Akka.Cluster.Cluster.Get(system).SelfAddress.ToString(), options.MemberId,
        cp.ApiUrl, cp.GrpcUrl);

    /// <summary>Joins the cluster: the explicit seed nodes when given, else the live members recorded in the database.</summary>
    public async Task JoinAsync(ActorSystem system, CancellationToken ct)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        await using var conn = await db.OpenConnectionAsync(ct);
        await ExecAsync(conn, $"""
            CREATE TABLE IF NOT EXISTS {Table} (address text PRIMARY KEY, member_id text NOT NULL, api_url text NOT NULL,
                grpc_url text NOT NULL, heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp())
            """, ct, lockFirst: true);
        var me = Me(system);
        if (options.SeedNodes.Count > 0)
        {
            await RecordAsync(conn, me, ct);
            LogJoining(string.Join(", ", options.SeedNodes), "--seed-nodes");
            cluster.JoinSeedNodes(options.SeedNodes.Select(Address.Parse));
            return;
        }

        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({ClusterLocks.Join})", conn, tx))
            await lockCmd.ExecuteNonQueryAsync(ct);
        var live = new List<string>();
        await using (var cmd = new NpgsqlCommand(
            $"SELECT address FROM {Table} WHERE heartbeat_at > clock_timestamp() - make_interval(secs => $1) AND address <> $2 ORDER BY heartbeat_at DESC", conn, tx))
        {
            cmd.Parameters.Add(new() { Value = options.MemberLiveness.TotalSeconds });
            cmd.Parameters.Add(new() { Value = me.Address });
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) live.Add(reader.GetString(0));
        }
        await UpsertAsync(conn, tx, me, ct);
        await tx.CommitAsync(ct);

        if (live.Count == 0)
        {
            LogJoining(me.Address, "no live member in the database: this one starts the cluster");
            cluster.Join(cluster.SelfAddress);
        }
        else
        {
            LogJoining(string.Join(", ", live), "the live members in the database");
            cluster.JoinSeedNodes(live.Select(Address.Parse));
        }
    }

    /// <summary>Records that this member is alive and reads everyone's row; failures are logged (the database may be away).</summary>
    public async Task HeartbeatAsync(ActorSystem system, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await RecordAsync(conn, Me(system), ct);
        var rows = new Dictionary<string, MemberRow>(StringComparer.Ordinal);
        await using var cmd = new NpgsqlCommand($"SELECT address, member_id, api_url, grpc_url FROM {Table}", conn);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows[reader.GetString(0)] = new(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3));
        _rows = rows;
    }

    public async Task LeaveAsync(ActorSystem system, CancellationToken ct)
    {
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"DELETE FROM {Table} WHERE address = $1", conn) { Parameters = { new() { Value = Me(system).Address } } };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task RecordAsync(NpgsqlConnection conn, MemberRow me, CancellationToken ct) => await UpsertAsync(conn, null, me, ct);

    private static async Task UpsertAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, MemberRow me, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            INSERT INTO {Table} (address, member_id, api_url, grpc_url) VALUES ($1, $2, $3, $4)
            ON CONFLICT (address) DO UPDATE SET member_id = $2, api_url = $3, grpc_url = $4, heartbeat_at = clock_timestamp()
            """, conn, tx)
        {
            Parameters = { new() { Value = me.Address }, new() { Value = me.Id }, new() { Value = me.ApiUrl }, new() { Value = me.GrpcUrl } },
        };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>DDL under a transaction-scoped advisory lock: replicas starting at once would race inside CREATE TABLE IF NOT EXISTS.</summary>
    private static async Task ExecAsync(NpgsqlConnection conn, string sql, CancellationToken ct, bool lockFirst)
    {
        await using var tx = await conn.BeginTransactionAsync(ct);
        if (lockFirst)
            await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({ClusterLocks.Join})", conn, tx))
                await lockCmd.ExecuteNonQueryAsync(ct);
        await using (var cmd = new NpgsqlCommand(sql, conn, tx)) await cmd.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "joining the cluster through {Seeds} ({Why})")]
    private partial void LogJoining(string seeds, string why);
}

/// <summary>Keeps this member's row fresh while it runs, and removes it when the member leaves.</summary>
public sealed partial class MembershipHeartbeat(PostgresMembership membership, ActorSystem system, ClusterOptions options, ILogger<MembershipHeartbeat> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval);
        do
        {
            try { await membership.HeartbeatAsync(system, stoppingToken); }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested) { return; }
            catch (Exception e) { LogFailed(e.Message); }
        } while (await timer.WaitForNextTickAsync(stoppingToken).AsTask().ContinueWith(t => t is { IsCompletedSuccessfully: true, Result: true }, CancellationToken.None));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try { await membership.LeaveAsync(system, cancellationToken); }
        catch (Exception e) { LogFailed(e.Message); }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "recording this member in the database failed ({Reason}); trying again")]
    private partial void LogFailed(string reason);
}
