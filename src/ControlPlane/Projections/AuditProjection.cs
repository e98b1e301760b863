using Mesh.ControlPlane.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Mesh.ControlPlane.Projections;

/// <summary>The audit trail (<c>mesh_audit</c>): one row per event of the log, who did what and when, with a one-line summary.</summary>
public sealed class AuditProjection : IProjection
{
    public const string ProjectionName = "audit";

    public string Name => ProjectionName;

    // One statement per batch: the rows travel as arrays, so a batch of 500 costs one round trip.
    private static readonly string InsertSql = $"""
        INSERT INTO {EventStoreSchema.AuditTable} (position, time, principal, correlation_id, causation_id, stream_id, type, summary)
        SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
        """;

    public async Task ApplyAsync(IReadOnlyList<RecordedEvent> batch, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(InsertSql, tx.Connection, tx)
        {
            Parameters =
            {
                new() { Value = batch.Select(e => e.Position.Value).ToArray() },
                // timestamptz takes UTC only; the offset the command was decided in is not part of the instant.
                new() { Value = batch.Select(e => e.Metadata.Time.UtcDateTime).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz },
                new() { Value = batch.Select(e => e.Metadata.Principal).ToArray() },
                new() { Value = batch.Select(e => e.Metadata.CorrelationId).ToArray() },
                new() { Value = batch.Select(e => e.Metadata.CausationId).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                new() { Value = batch.Select(e => e.StreamId).ToArray() },
                new() { Value = batch.Select(e => e.Type).ToArray() },
                new() { Value = batch.Select(AuditSummary.Describe).ToArray() },
            },
        };
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task ResetAsync(NpgsqlTransaction tx, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"DELETE FROM {EventStoreSchema.AuditTable}", tx.Connection, tx);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
