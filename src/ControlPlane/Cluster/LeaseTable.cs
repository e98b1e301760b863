using Npgsql;
using NpgsqlTypes;
using static Mesh.ControlPlane.EventStore.EventStoreSchema;

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
    private readonly double _ttlSeconds = options.LeaseTtl.TotalSeconds;

    public Task HeartbeatAsync(MemberInfo me, CancellationToken ct) => ExecAsync($"""
        INSERT INTO {MembersTable} (member_id, api_url, grpc_url) VALUES ($1, $2, $3)
        ON CONFLICT (member_id) DO UPDATE SET heartbeat_at = now(), api_url = $2, grpc_url = $3
        """, ct, me.Id, me.ApiUrl, me.GrpcUrl);

    public Task EnsureShardsAsync(CancellationToken ct) => ExecAsync(
        $"INSERT INTO {LeasesTable} (shard) SELECT generate_series(0, $1 - 1) ON CONFLICT DO NOTHING", ct, options.Shards);

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
            $"SELECT shard, owner, epoch, owner IS NOT NULL AND expires_at > now() FROM {LeasesTable} WHERE shard < $1 ORDER BY shard");
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
            WHERE l.shard = h.shard AND l.epoch = h.epoch AND l.owner = $1
            RETURNING l.shard
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
            UPDATE {LeasesTable} SET owner = $1, epoch = epoch + 1, expires_at = now() + make_interval(secs => $2)
            WHERE shard = ANY($3) AND (owner IS NULL OR expires_at <= now())
            RETURNING shard, epoch
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
        $"UPDATE {LeasesTable} SET owner = NULL, expires_at = '-infinity' WHERE owner = $1 AND shard = ANY($2)", ct, me, shards.ToArray());

    public Task LeaveAsync(string me, CancellationToken ct) => ExecAsync($"DELETE FROM {MembersTable} WHERE member_id = $1", ct, me);

    private async Task ExecAsync(string sql, CancellationToken ct, params object[] values)
    {
        await using var cmd = db.CreateCommand(sql);
        foreach (var v in values) cmd.Parameters.Add(new() { Value = v });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
