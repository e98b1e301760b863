using System.Globalization;
using JasperFx;
using JasperFx.Events;
using Marten;
using Marten.Exceptions;
using Mesh.Contracts.Identity;
using Npgsql;

namespace Mesh.ControlPlane.EventStore;

public sealed partial class MartenEventStore
{
    // Why appenders take turns (the hazard Marten's UseExclusiveLockOnConcurrentAppends documents): a sequence
    // number is handed out at insert but becomes visible at commit. Transaction A takes 41, B takes 42 and commits
    // first; a reader sees 42, moves its checkpoint past 41, and when A commits, 41 is behind every reader forever.
    // Every append therefore takes a transaction-scoped advisory lock as the first statement of its own transaction,
    // and only then lets Marten take its sequence numbers (Rich append mode: a nextval() query of the session, on our
    // transaction): the next appender can only take its numbers after the previous one committed or rolled back, so
    // positions become visible strictly in order and a reader that saw N has seen everything below N. A hole is then
    // only ever an append that rolled back, which no reader waits for. The price is one append at a time per database.
    //
    // Fencing: the lease row is read FOR SHARE after the lock, in the same transaction, so a takeover (an UPDATE of
    // that row) either committed before the check and the append is refused, or waits until the append committed.
    private static readonly string LockAndFenceSql =
        $"SELECT pg_advisory_xact_lock({AdvisoryLocks.Append}), " +
        $"EXISTS (SELECT 1 FROM {LeaseFence.Table} WHERE name = $1 AND owner = $2 AND expires_at > clock_timestamp() FOR SHARE)";

    // Without a fence the lease table is never named: it exists only once a lease was taken.
    private static readonly string LockSql = $"SELECT pg_advisory_xact_lock({AdvisoryLocks.Append}), true";

    public async Task<LogPosition> AppendAsync(
        string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(streamId);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedVersion, ExpectedVersion.Any);
        if (events.Count == 0) throw new ArgumentException("An append needs at least one event.", nameof(events));

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var position = await AppendInAsync(tx, streamId, expectedVersion, events, fence, ct);
        await tx.CommitAsync(ct);
        return position;
    }

    /// <summary>The append, inside <paramref name="tx"/>, which the caller commits (or not): the statements a commit makes visible.</summary>
    internal async Task<LogPosition> AppendInAsync(
        NpgsqlTransaction tx, string streamId, long expectedVersion, IReadOnlyList<EventData> events, LeaseFence? fence, CancellationToken ct)
    {
        var bodies = events.Select(types.BodyOf).ToArray();   // a bad body refuses the whole batch before anything is sent
        await using (var lockAndFence = new NpgsqlBatch(tx.Connection, tx))
        {
            // The lock is held across the session's round trips: a writer paused between them (a stopped process, a
            // long GC pause) would stall every append of the cluster. The database ends such a transaction instead.
            lockAndFence.BatchCommands.Add(new($"SET LOCAL idle_in_transaction_session_timeout = {(int)_options.AppendIdleTimeout.TotalMilliseconds}"));
            lockAndFence.BatchCommands.Add(fence is null ? new(LockSql) : new(LockAndFenceSql)
            {
                Parameters =
                {
                    new() { Value = fence.Lease, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text },
                    new() { Value = fence.Owner, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text },
                },
            });
            await using var reader = await lockAndFence.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            if (!reader.GetBoolean(1)) throw new LeaseLost(fence!);
        }

        await using var session = store.LightweightSession(Marten.Services.SessionOptions.ForTransaction(tx));
        // Under the lock nobody else appends, so the version read here is the version the append lands on.
        var actual = (await session.Events.FetchStreamStateAsync(streamId, ct))?.Version ?? 0;
        if (expectedVersion != ExpectedVersion.Any && expectedVersion != actual)
            throw new StreamVersionConflict(streamId, expectedVersion, actual);

        // Marten stamps the session's metadata on every event it saves, so each run of events that share their
        // metadata is saved on its own, all in this one transaction: the append stays all or nothing.
        var version = actual;
        IEvent? last = null;
        for (var start = 0; start < events.Count;)
        {
            var m = events[start].Metadata;
            var end = start + 1;
            while (end < events.Count && events[end].Metadata == m) end++;
            session.CorrelationId = m.CorrelationId;
            session.CausationId = m.CausationId;
            session.LastModifiedBy = m.Principal;
            session.SetHeader(TimeHeader, m.Time.ToString("O", CultureInfo.InvariantCulture));
            // Marten's own check too (the version after the append), so a writer that bypassed the lock still conflicts.
            version += end - start;
            var action = session.Events.Append(streamId, version, bodies[start..end]);
            last = action.Events[^1];
            await SaveAsync(session, streamId, expectedVersion, ct);
            start = end;
        }
        return new LogPosition(last!.Sequence);
    }

    private async Task SaveAsync(IDocumentSession session, string streamId, long expectedVersion, CancellationToken ct)
    {
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e is ConcurrencyException or Marten.Exceptions.ExistingStreamIdCollisionException)
        {
            // The single place where Marten's refusal becomes the domain's conflict.
            throw new StreamVersionConflict(streamId, expectedVersion, await StreamVersionAsync(streamId, ct));
        }
    }

    private async Task<long> StreamVersionAsync(string streamId, CancellationToken ct)
    {
        await using var session = store.QuerySession();
        return (await session.Events.FetchStreamStateAsync(streamId, ct))?.Version ?? 0;
    }
}
