using Mesh.Contracts.Identity;
using Npgsql;
using NpgsqlTypes;

namespace Mesh.ControlPlane.EventStore;

public sealed partial class PostgresEventStore
{
    // Why appenders take turns (the same hazard Marten's UseExclusiveLockOnConcurrentAppends documents):
    // with a sequence, a position is handed out at insert but becomes visible at commit. Transaction A takes 41,
    // B takes 42 and commits first; a reader sees 42, moves its checkpoint past 41, and when A commits, 41 is
    // behind every reader forever. Taking a transaction-scoped advisory lock *before* the position is computed
    // means the next appender can only compute its position after the previous one has committed (locks are
    // released after the commit is visible), so positions become visible strictly in order and a reader that
    // saw N has seen everything below N. Under the lock the position is simply max + 1, so the log is also dense:
    // no holes from rolled-back appends. The price is one append at a time across the cluster (~1 round trip each).
    //
    // Fencing: an append made for a shard's owner carries the lease it holds (name and owner). The lease row is read
    // FOR SHARE in the same statement, so a takeover (an UPDATE of that row naming another owner) either commits
    // before this check and the append is refused, or waits until this append has committed. Expiry is decided on the
    // database's clock (clock_timestamp(), not the transaction's start), never by comparing members' clocks. An
    // owner that was paused past its lease, or lost it to another member, can therefore never append again.
    // An unfenced append (tools, tests) never reads the lease table, which only exists once a lease was taken.
    private static string AppendSql(bool fenced) => $"""
        WITH {(fenced
            ? $"fence AS (SELECT name FROM {LeaseFence.Table} WHERE name = $6 AND owner = $7 AND expires_at > clock_timestamp() FOR SHARE), allowed AS (SELECT EXISTS (SELECT 1 FROM fence) AS ok),"
            : "allowed AS (SELECT true AS ok),")}
             head AS (SELECT coalesce(max(position), 0) AS position FROM {EventStoreSchema.EventsTable}),
             stream AS (SELECT coalesce(max(stream_version), 0) AS version FROM {EventStoreSchema.EventsTable} WHERE stream_id = $1),
             appended AS (
                 INSERT INTO {EventStoreSchema.EventsTable} (position, stream_id, stream_version, type, data, metadata)
                 SELECT head.position + e.n, $1, stream.version + e.n, e.type, e.data, e.metadata
                 FROM head, stream, allowed, unnest($3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS e(type, data, metadata, n)
                 WHERE allowed.ok AND ($2 = {ExpectedVersion.Any} OR stream.version = $2)
                 RETURNING position),
             last AS (SELECT max(position) AS position FROM appended)
        SELECT stream.version, last.position, allowed.ok,
               CASE WHEN last.position IS NOT NULL
                    THEN pg_notify('{EventStoreSchema.NotificationChannel}', last.position::text) END
        FROM stream, last, allowed
        """;

    private static readonly string FencedAppendSql = AppendSql(fenced: true);
    private static readonly string UnfencedAppendSql = AppendSql(fenced: false);

    public async Task<LogPosition> AppendAsync(
        string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedVersion, ExpectedVersion.Any);
        if (events.Count == 0) throw new ArgumentException("An append needs at least one event.", nameof(events));

        // One round trip, one implicit transaction: the lock, the version check, the insert and the notification
        // all commit together (the notification is delivered at commit, never for a refused batch).
        await using var batch = dataSource.CreateBatch();
        foreach (var command in AppendCommands(streamId, expectedVersion, events, fence)) batch.BatchCommands.Add(command);

        long actualVersion;
        long? lastPosition;
        var held = true;
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(ct);
            await reader.NextResultAsync(ct);
            await reader.ReadAsync(ct);
            actualVersion = reader.GetInt64(0);
            lastPosition = reader.IsDBNull(1) ? null : reader.GetInt64(1);
            held = reader.GetBoolean(2);
        }
        catch (PostgresException e) when (e is { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: EventStoreSchema.StreamVersionConstraint })
        {
            // Unreachable while every writer takes the append lock; kept so a writer that bypasses it is still
            // refused as a conflict and never as an opaque database error.
            actualVersion = await StreamVersionAsync(streamId, ct);
            lastPosition = null;
        }

        // The single place where a refused append becomes the domain's conflict or the lost lease.
        if (!held) throw new LeaseLost(fence!);
        if (lastPosition is null) throw new StreamVersionConflict(streamId, expectedVersion, actualVersion);
        return new LogPosition(lastPosition.Value);
    }

    /// <summary>
    /// The statements of one append, in order. The second returns one row: the stream's version before the append,
    /// and the last appended position (null when the version check refused the batch).
    /// </summary>
    internal static NpgsqlBatchCommand[] AppendCommands(string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence) =>
    [
        new($"SELECT pg_advisory_xact_lock({AdvisoryLocks.Append})"),
        WithFence(new(fence is null ? UnfencedAppendSql : FencedAppendSql)
        {
            Parameters =
            {
                new() { Value = streamId },
                new() { Value = expectedVersion },
                new() { Value = events.Select(e => e.Type).ToArray() },
                new() { Value = events.Select(e => e.Json).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb },
                new() { Value = events.Select(e => EventMetadataJson.Serialize(e.Metadata)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb },
            },
        }, fence),
    ];

    private static NpgsqlBatchCommand WithFence(NpgsqlBatchCommand command, LeaseFence? fence)
    {
        if (fence is null) return command;
        command.Parameters.Add(new() { Value = fence.Lease, NpgsqlDbType = NpgsqlDbType.Text });
        command.Parameters.Add(new() { Value = fence.Owner, NpgsqlDbType = NpgsqlDbType.Text });
        return command;
    }

    private async Task<long> StreamVersionAsync(string streamId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"SELECT coalesce(max(stream_version), 0) FROM {EventStoreSchema.EventsTable} WHERE stream_id = $1");
        cmd.Parameters.Add(new() { Value = streamId });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }
}
