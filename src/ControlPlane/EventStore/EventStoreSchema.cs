using Npgsql;

namespace Mesh.ControlPlane.EventStore;

/// <summary>
/// Versioned, forward-only migrations of the event store's tables. Every replica calls <see cref="MigrateAsync"/> at
/// start; an advisory lock makes concurrent callers take turns, and the applied versions are recorded, so running it
/// again (or from several processes at once) changes nothing.
/// </summary>
public static class EventStoreSchema
{
    public const string EventsTable = "mesh_events";
    public const string StreamVersionConstraint = "mesh_events_stream_version_uq";
    public const string NotificationChannel = "mesh_events";
    public const string MembersTable = "mesh_members";
    public const string LeasesTable = "mesh_shard_leases";
    public const string SnapshotsTable = "mesh_snapshots";
    public const string CheckpointsTable = "mesh_projection_checkpoints";
    public const string AuditTable = "mesh_audit";
    internal const string MigrationsTable = "mesh_events_migrations";

    // Append only: never edit a migration that has shipped, add the next one.
    private static readonly (int Version, string Description, string Sql)[] Migrations =
    [
        (1, "create the event log", $"""
            CREATE TABLE {EventsTable} (
                position       bigint      NOT NULL PRIMARY KEY CHECK (position > 0),
                stream_id      text        NOT NULL,
                stream_version bigint      NOT NULL CHECK (stream_version > 0),
                type           text        NOT NULL,
                data           jsonb       NOT NULL,
                metadata       jsonb       NOT NULL,
                recorded_at    timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT {StreamVersionConstraint} UNIQUE (stream_id, stream_version)
            );
            """),
        (2, "cluster members and shard leases", $"""
            CREATE TABLE {MembersTable} (
                member_id    text        NOT NULL PRIMARY KEY,
                api_url      text        NOT NULL,
                grpc_url     text        NOT NULL,
                started_at   timestamptz NOT NULL DEFAULT now(),
                heartbeat_at timestamptz NOT NULL DEFAULT now()
            );
            -- One row per shard. epoch only grows: every change of owner bumps it, and an append carries the epoch
            -- its writer holds, so a writer that lost the shard is refused (see PostgresEventStore.Append.cs).
            CREATE TABLE {LeasesTable} (
                shard      int         NOT NULL PRIMARY KEY CHECK (shard >= 0),
                owner      text,
                epoch      bigint      NOT NULL DEFAULT 0,
                expires_at timestamptz NOT NULL DEFAULT '-infinity'
            );
            """),
        (3, "aggregate snapshots", $"""
            CREATE TABLE {SnapshotsTable} (
                stream_id      text        NOT NULL PRIMARY KEY,
                stream_version bigint      NOT NULL CHECK (stream_version > 0),
                position       bigint      NOT NULL,
                state          jsonb       NOT NULL,
                taken_at       timestamptz NOT NULL DEFAULT now()
            );
            """),
        (4, "projection checkpoints and the audit trail", $"""
            CREATE TABLE {CheckpointsTable} (
                projection text        NOT NULL PRIMARY KEY,
                position   bigint      NOT NULL,
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE {AuditTable} (
                position       bigint      NOT NULL PRIMARY KEY,
                time           timestamptz NOT NULL,
                principal      text        NOT NULL,
                correlation_id text        NOT NULL,
                causation_id   text,
                stream_id      text        NOT NULL,
                type           text        NOT NULL,
                summary        text        NOT NULL
            );
            CREATE INDEX mesh_audit_stream ON {AuditTable} (stream_id, position);
            CREATE INDEX mesh_audit_principal ON {AuditTable} (principal, position);
            """),
    ];

    public static int LatestVersion => Migrations[^1].Version;

    public static async Task MigrateAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);

        // Taken before anything is read, so two starting processes cannot both see "version 1 missing" and both
        // run it; even CREATE TABLE IF NOT EXISTS races on the catalog without this.
        await ExecuteAsync(conn, tx, $"SELECT pg_advisory_xact_lock({AdvisoryLocks.Migrations})", ct);
        await ExecuteAsync(conn, tx, $"""
            CREATE TABLE IF NOT EXISTS {MigrationsTable} (
                version     int         NOT NULL PRIMARY KEY,
                description text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """, ct);

        var applied = new HashSet<int>();
        await using (var cmd = new NpgsqlCommand($"SELECT version FROM {MigrationsTable}", conn, tx))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct)) applied.Add(reader.GetInt32(0));

        foreach (var (version, description, sql) in Migrations)
        {
            if (applied.Contains(version)) continue;
            await ExecuteAsync(conn, tx, sql, ct);
            await using var record = new NpgsqlCommand(
                $"INSERT INTO {MigrationsTable} (version, description) VALUES ($1, $2)", conn, tx)
            { Parameters = { new() { Value = version }, new() { Value = description } } };
            await record.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
    }

    private static async Task ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
