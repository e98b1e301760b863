using Npgsql;
using NpgsqlTypes;

namespace Mesh.ControlPlane.Cluster;

/// <summary>A member of the cluster as the others see it: its id and where to reach it.</summary>
public sealed record MemberInfo(string Id, string ApiUrl, string GrpcUrl);

/// <summary>A shard's lease as stored: its owner (null when free), its epoch, and whether it is still within its TTL.</summary>
public sealed record ShardLease(int Shard, string? Owner, long Epoch, bool Live);

/// <summary>
/// The members and shard leases in PostgreSQL. Every statement is a single UPDATE or INSERT that decides on the
/// database's clock, so members never compare their own clocks with each other's.
/// </summary>
internal sealed class LeaseTable(NpgsqlDataSource db, ClusterOptions options)
{
    public const string MembersTable = "mesh_members";
    public const string LeasesTable = EventStore.MartenEventStore.LeasesTable;

    // A shard's lease is the row "shard-N"; its epoch is the instant it was last acquired (in microseconds), which
    // changes with every change of owner, so a holder that lost it and took it again is told apart.
    private const string Epoch = "coalesce((extract(epoch FROM acquired_at) * 1000000)::bigint, 0)";

    private readonly double _ttlSeconds = options.LeaseTtl.TotalSeconds;

    public static string LeaseOf(int shard) => $"shard-{shard}";

    public Task HeartbeatAsync(MemberInfo me, CancellationToken ct) => ExecAsync($"""
        INSERT INTO {MembersTable} (member_id, api_url, grpc_url) VALUES ($1, $2, $3)
        ON CONFLICT (member_id) DO UPDATE SET heartbeat_at = now(), api_url = $2, grpc_url = $3
        """, ct, me.Id, me.ApiUrl, me.GrpcUrl);

    public async Task EnsureShardsAsync(CancellationToken ct)
    {
        // The lock keeps members starting together from racing on the catalog (CREATE … IF NOT EXISTS alone does not).
        await using var conn = await db.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using (var create = new NpgsqlCommand($"""
            SELECT pg_advisory_xact_lock({0x6D657368L << 32 | 0x0003});
            CREATE TABLE IF NOT EXISTS {MembersTable} (
                member_id    text        NOT NULL PRIMARY KEY,
                api_url      text        NOT NULL,
                grpc_url     text        NOT NULL,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE IF NOT EXISTS {LeasesTable} (name text PRIMARY KEY, owner text, expires_at timestamptz NOT NULL DEFAULT '-infinity', acquired_at timestamptz);
            """, conn, tx))
            await create.ExecuteNonQueryAsync(ct);
        await using (var rows = new NpgsqlCommand(
            $"INSERT INTO {LeasesTable} (name) SELECT 'shard-' || generate_series(0, $1 - 1) ON CONFLICT DO NOTHING", conn, tx))
        {
            rows.Parameters.Add(new() { Value = options.Shards });
            await rows.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>Members whose last heartbeat is within the lease TTL.</summary>
    public async Task<IReadOnlyList<MemberInfo>> AliveMembersAsync(CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(
            $"SELECT member_id, api_url, grpc_url FROM {MembersTable} WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY member_id");
        cmd.Parameters.Add(new() { Value = _ttlSeconds });
        var members = new List<MemberInfo>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) members.Add(new(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        return members;
    }

    public async Task<IReadOnlyList<ShardLease>> LeasesAsync(CancellationToken ct)
    {
        await using var cmd = db.CreateCommand(
            $"""
            SELECT shard, owner, {Epoch}, owner IS NOT NULL AND expires_at > now()
            FROM (SELECT substr(name, 7)::int AS shard, * FROM {LeasesTable} WHERE name LIKE 'shard-%') l WHERE shard < $1 ORDER BY shard
            """);
        cmd.Parameters.Add(new() { Value = options.Shards });
        var leases = new List<ShardLease>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            leases.Add(new(reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetBoolean(3)));
        return leases;
    }

    /// <summary>Extends the leases still held at the given epochs; returns the shards renewed (a missing one was lost).</summary>
    public async Task<IReadOnlySet<int>> RenewAsync(string me, IReadOnlyCollection<(int Shard, long Epoch)> held, CancellationToken ct)
    {
        if (held.Count == 0) return new HashSet<int>();
        await using var cmd = db.CreateCommand($"""
            UPDATE {LeasesTable} l SET expires_at = now() + make_interval(secs => $2)
            FROM unnest($3::int[], $4::bigint[]) AS h(shard, epoch)
            WHERE l.name = 'shard-' || h.shard AND {Epoch} = h.epoch AND l.owner = $1
            RETURNING h.shard
            """);
        cmd.Parameters.Add(new() { Value = me });
        cmd.Parameters.Add(new() { Value = _ttlSeconds });
        cmd.Parameters.Add(new() { Value = held.Select(h => h.Shard).ToArray() });
        cmd.Parameters.Add(new() { Value = held.Select(h => h.Epoch).ToArray() });
        var renewed = new HashSet<int>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) renewed.Add(reader.GetInt32(0));
        return renewed;
    }

    /// <summary>Takes the shards that are free or expired, bumping each one's epoch (which fences the previous owner).</summary>
    public async Task<IReadOnlyList<(int Shard, long Epoch)>> AcquireAsync(string me, IReadOnlyCollection<int> shards, CancellationToken ct)
    {
        if (shards.Count == 0) return [];
        await using var cmd = db.CreateCommand($"""
            UPDATE {LeasesTable} SET owner = $1, acquired_at = clock_timestamp(), expires_at = now() + make_interval(secs => $2)
            WHERE name = ANY(SELECT 'shard-' || s FROM unnest($3::int[]) s) AND (owner IS NULL OR expires_at <= now())
            RETURNING substr(name, 7)::int, {Epoch}
            """);
        cmd.Parameters.Add(new() { Value = me });
        cmd.Parameters.Add(new() { Value = _ttlSeconds });
        cmd.Parameters.Add(new() { Value = shards.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer });
        var acquired = new List<(int, long)>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) acquired.Add((reader.GetInt32(0), reader.GetInt64(1)));
        return acquired;
    }

    /// <summary>Gives shards up so their next owner can take them at once instead of waiting out the TTL.</summary>
    public Task ReleaseAsync(string me, IReadOnlyCollection<int> shards, CancellationToken ct) => shards.Count == 0 ? Task.CompletedTask : ExecAsync(
        $"UPDATE {LeasesTable} SET owner = NULL, expires_at = '-infinity' WHERE owner = $1 AND name = ANY(SELECT 'shard-' || s FROM unnest($2::int[]) s)", ct, me, shards.ToArray());

    public Task LeaveAsync(string me, CancellationToken ct) => ExecAsync($"DELETE FROM {MembersTable} WHERE member_id = $1", ct, me);

    private async Task ExecAsync(string sql, CancellationToken ct, params object[] values)
    {
        await using var cmd = db.CreateCommand(sql);
        foreach (var v in values) cmd.Parameters.Add(new() { Value = v });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
