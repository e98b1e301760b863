using static Mesh.ControlPlane.EventStore.EventStoreSchema;

namespace Mesh.ControlPlane.EventStore;

/// <summary>An aggregate's state as of a stream version, so loading it replays only the events after that version.</summary>
public sealed record StreamSnapshot(string StreamId, long StreamVersion, long Position, string State);

/// <summary>
/// Snapshots of long streams (mesh_snapshots, one row per stream, the newest wins). A snapshot is only a shortcut:
/// the log stays the truth, and a snapshot that no longer decodes is simply ignored.
/// </summary>
public sealed class SnapshotStore(Npgsql.NpgsqlDataSource db)
{
    public async Task<StreamSnapshot?> LoadAsync(string streamId, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand($"SELECT stream_version, position, state::text FROM {SnapshotsTable} WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = streamId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? new(streamId, reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2)) : null;
    }

    /// <summary>Stores the snapshot unless a newer one is already there.</summary>
    public async Task SaveAsync(StreamSnapshot snapshot, CancellationToken ct = default)
    {
        await using var cmd = db.CreateCommand($"""
            INSERT INTO {SnapshotsTable} (stream_id, stream_version, position, state) VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (stream_id) DO UPDATE SET stream_version = $2, position = $3, state = $4::jsonb, taken_at = now()
            WHERE {SnapshotsTable}.stream_version < $2
            """);
        cmd.Parameters.Add(new() { Value = snapshot.StreamId });
        cmd.Parameters.Add(new() { Value = snapshot.StreamVersion });
        cmd.Parameters.Add(new() { Value = snapshot.Position });
        cmd.Parameters.Add(new() { Value = snapshot.State });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
