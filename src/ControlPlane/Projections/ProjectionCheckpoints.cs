using Mesh.ControlPlane.EventStore;
using Mesh.Contracts.Identity;
using Npgsql;

namespace Mesh.ControlPlane.Projections;

/// <summary>The stored position of each projection: the last event whose rows are committed (0: none).</summary>
internal static class ProjectionCheckpoints
{
    private const string Table = EventStoreSchema.CheckpointsTable;

    /// <summary>Creates the checkpoint at 0 unless it exists; returns the stored position.</summary>
    public static async Task<LogPosition> EnsureAsync(NpgsqlDataSource dataSource, string projection, CancellationToken ct)
    {
        // Two statements, not one: a statement's snapshot would not see the row another runner inserted while this
        // INSERT waited for it, so "ON CONFLICT DO NOTHING … then SELECT" in one statement can find no row at all.
        await using (var create = dataSource.CreateCommand(
            $"INSERT INTO {Table} (projection, position) VALUES ($1, 0) ON CONFLICT (projection) DO NOTHING"))
        {
            create.Parameters.Add(new() { Value = projection });
            await create.ExecuteNonQueryAsync(ct);
        }
        await using var read = dataSource.CreateCommand($"SELECT position FROM {Table} WHERE projection = $1");
        read.Parameters.Add(new() { Value = projection });
        return new LogPosition((long)(await read.ExecuteScalarAsync(ct))!);
    }

    /// <summary>
    /// Locks the checkpoint row until <paramref name="tx"/> ends (creating it at 0 if missing) and returns its
    /// position: the latest committed one, even when the lock had to wait for another transaction.
    /// </summary>
    public static async Task<LogPosition> LockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string projection, CancellationToken ct)
    {
        await using (var create = new NpgsqlCommand(
            $"INSERT INTO {Table} (projection, position) VALUES ($1, 0) ON CONFLICT (projection) DO NOTHING", conn, tx))
        {
            create.Parameters.Add(new() { Value = projection });
            await create.ExecuteNonQueryAsync(ct);
        }
        await using var cmd = new NpgsqlCommand($"SELECT position FROM {Table} WHERE projection = $1 FOR UPDATE", conn, tx);
        cmd.Parameters.Add(new() { Value = projection });
        return new LogPosition((long)(await cmd.ExecuteScalarAsync(ct))!);
    }

    public static async Task MoveAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string projection, LogPosition position, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"UPDATE {Table} SET position = $2, updated_at = now() WHERE projection = $1", conn, tx);
        cmd.Parameters.Add(new() { Value = projection });
        cmd.Parameters.Add(new() { Value = position.Value });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The stored position and when it last moved; position 0 and no time for a projection that never ran.</summary>
    public static async Task<(LogPosition Position, DateTimeOffset? UpdatedAt)> ReadAsync(NpgsqlDataSource dataSource, string projection, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"SELECT position, updated_at FROM {Table} WHERE projection = $1");
        cmd.Parameters.Add(new() { Value = projection });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct)
            ? (new LogPosition(reader.GetInt64(0)), reader.GetFieldValue<DateTimeOffset>(1))
            : (LogPosition.Start, null);
    }
}
